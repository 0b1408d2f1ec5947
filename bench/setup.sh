# shellcheck shell=bash
# What the bench scripts share, sourced after they set BENCH_NAME (the log prefix):
#   the workspace ($WORK, removed at exit unless KEEP_TMP=1) and the processes to stop with it,
#   the tools (bench_build: the collector as `make build` ships it, gentree, the proxies;
#   find_tool/install_tool, bench_peers: rclone and mc), an S3 server of either kind on
#   127.0.0.1 (start_s3 versitygw|minio PORT), the peers' configuration for it (s3_peers),
#   and the figures (median, best, ratio, proc_cpu).
# The scripts take no COLLECTOR_* variable from the caller's environment into their runs.

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_CACHE=${BENCH_BIN:-$HOME/.cache/collector-bench/bin}
# mc refuses keys shorter than 3 (access) and 8 (secret) characters.
ACCESS_KEY=benchaccess SECRET_KEY=benchsecret

log() { printf '[%s %s] %s\n' "${BENCH_NAME:-bench}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- workspace
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/collector-${BENCH_NAME:-bench}.XXXXXX")
BENCH_PIDS=()
_bench_cleanup() {
	local rc=$? pid
	set +e
	for pid in ${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}; do
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap _bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BENCH_GIVEN_BIN=${COLLECTOR_BIN:-}
while read -r v; do unset "$v"; done < <(compgen -e | grep '^COLLECTOR_' || true)

# ---------------------------------------------------------------- tools
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port what
	for _ in $(seq 300); do port_in_use "$1" && return 0; sleep 0.1; done
	die "$2 did not start on port $1"
}
# free_port DEFAULT: DEFAULT when free, else a free port from 20000-32767.
free_port() {
	local p=$1
	while port_in_use "$p"; do p=$((20000 + RANDOM % 12768)); done
	echo "$p"
}

find_tool() { # name -> path, or empty
	local p
	for p in "$BIN_CACHE/$1" "$HOME/.cache/collector-test/bin/$1" "$(go env GOPATH 2>/dev/null)/bin/$1"; do
		[ -x "$p" ] && { echo "$p"; return; }
	done
	command -v "$1" 2>/dev/null || true
}
install_tool() { # name module@version
	log "installing $1 ($2) into $BIN_CACHE"
	mkdir -p "$BIN_CACHE"
	(cd "$BIN_CACHE" && GOBIN=$BIN_CACHE GOWORK=off GOFLAGS=-buildvcs=false nice -n 10 go install "$2") \
		>"$WORK/install-$1.log" 2>&1 || { log "installing $1 failed: $(tail -3 "$WORK/install-$1.log")"; return 1; }
}

# bench_build: $COLLECTOR (COLLECTOR_BIN, or this checkout built as `make build` builds it), $GENTREE,
# $COUNTPROXY, $LATENCYPROXY.
bench_build() {
	mkdir -p "$WORK/bin"
	if [ -n "$BENCH_GIVEN_BIN" ]; then
		cp "$BENCH_GIVEN_BIN" "$WORK/bin/collector"
	else
		log "building the collector from $BENCH_REPO"
		(cd "$BENCH_REPO" && nice -n 10 make --no-print-directory build BIN="$WORK/bin/collector" >/dev/null) ||
			die "the collector does not build"
	fi
	(cd "$BENCH_REPO" && for t in gentree countproxy latencyproxy; do nice -n 10 go build -o "$WORK/bin/$t" "./bench/$t" || exit 1; done) ||
		die "the bench tools do not build"
	COLLECTOR=$WORK/bin/collector GENTREE=$WORK/bin/gentree
	COUNTPROXY=$WORK/bin/countproxy LATENCYPROXY=$WORK/bin/latencyproxy
}

# bench_peers: $RCLONE and $MC, installed into $BIN_CACHE unless INSTALL_PEERS=0; empty when missing.
bench_peers() {
	RCLONE=$(find_tool rclone) MC=$(find_tool mc)
	if [ "${INSTALL_PEERS:-1}" = 1 ]; then
		[ -n "$RCLONE" ] || { install_tool rclone github.com/rclone/rclone@v1.76.0 && RCLONE=$BIN_CACHE/rclone; } || true
		[ -n "$MC" ] || { install_tool mc github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9 && MC=$BIN_CACHE/mc; } || true
	fi
	# A "mc" on PATH may be Midnight Commander: keep it only if it is MinIO's client.
	if [ -n "$MC" ] && ! grep -qi minio <<<"$("$MC" --version 2>&1 || true)"; then MC=""; fi
	[ -n "$RCLONE" ] || log "rclone not found: its figures read n/a"
	[ -n "$MC" ] || log "mc not found: its figures read n/a"
}

# ---------------------------------------------------------------- S3 servers
# start_s3 KIND PORT: a fresh S3 server of KIND (versitygw or minio) on 127.0.0.1:PORT with the
# bucket "bench", data under $WORK/KIND-data, as scripts/servers.sh installs and runs it (MinIO in
# its default mode, one drive). Sets S3_PID.
start_s3() {
	local kind=$1 port=$2 bin
	# shellcheck source=scripts/servers.sh
	. "$BENCH_REPO/scripts/servers.sh"
	port_in_use "$port" && die "port $port is in use"
	case $kind in
	versitygw)
		bin=$(find_tool versitygw)
		[ -n "$bin" ] || { install_servers >&2 && bin=$COLLECTOR_TEST_CACHE/bin/versitygw; } || die "no versitygw"
		mkdir -p "$WORK/versitygw-data/bench"
		ROOT_ACCESS_KEY=$ACCESS_KEY ROOT_SECRET_KEY=$SECRET_KEY "$bin" --port "127.0.0.1:$port" posix \
			"$WORK/versitygw-data" >"$WORK/versitygw.log" 2>&1 &
		;;
	minio)
		install_minio >&2 || die "no MinIO (see scripts/servers.sh install)"
		mkdir -p "$WORK/minio-data"
		MINIO_ROOT_USER=$ACCESS_KEY MINIO_ROOT_PASSWORD=$SECRET_KEY MINIO_BROWSER=off MINIO_UPDATE=off MINIO_PROMETHEUS_AUTH_TYPE=public \
			"$COLLECTOR_TEST_CACHE/bin/minio" server --quiet --address "127.0.0.1:$port" "$WORK/minio-data" \
			>"$WORK/minio.log" 2>&1 &
		;;
	*) die "start_s3: unknown kind $kind" ;;
	esac
	S3_PID=$!
	BENCH_PIDS+=("$S3_PID")
	wait_port "$port" "$kind"
	if [ "$kind" = minio ]; then
		local mc=("$COLLECTOR_TEST_CACHE/bin/mc" --config-dir "$WORK/mc-setup" --quiet)
		"${mc[@]}" alias set setup "http://127.0.0.1:$port" "$ACCESS_KEY" "$SECRET_KEY" >/dev/null || die "mc alias set failed"
		for _ in $(seq 50); do "${mc[@]}" mb --ignore-existing setup/bench >/dev/null 2>&1 && break; sleep 0.2; done
		"${mc[@]}" ls setup/bench >/dev/null || die "no bucket on MinIO: see $WORK/minio.log"
	fi
	log "$kind on 127.0.0.1:$port (pid $S3_PID)"
}

# s3_peers NAME PORT: the collector's store URL in $S3URL, an rclone remote NAME (from the
# environment only) and an mc alias NAME (mcx runs mc with the bench's config), for 127.0.0.1:PORT.
s3_peers() {
	local name=$1 port=$2 up
	up=$(tr '[:lower:]' '[:upper:]' <<<"$name")
	export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
	S3URL="s3://bench?endpoint=http://127.0.0.1:$port&region=us-east-1"
	export RCLONE_CONFIG=$WORK/rclone.conf # absent: remotes come from the environment only
	export "RCLONE_CONFIG_${up}_TYPE=s3" "RCLONE_CONFIG_${up}_PROVIDER=Other" \
		"RCLONE_CONFIG_${up}_ENDPOINT=http://127.0.0.1:$port" "RCLONE_CONFIG_${up}_ACCESS_KEY_ID=$ACCESS_KEY" \
		"RCLONE_CONFIG_${up}_SECRET_ACCESS_KEY=$SECRET_KEY" "RCLONE_CONFIG_${up}_FORCE_PATH_STYLE=true" \
		"RCLONE_CONFIG_${up}_REGION=us-east-1"
	if [ -n "${MC:-}" ]; then
		mcx alias set "$name" "http://127.0.0.1:$port" "$ACCESS_KEY" "$SECRET_KEY" >/dev/null || die "mc alias set failed"
	fi
}
mcx() { "$MC" --config-dir "$WORK/mc" "$@"; }

# ---------------------------------------------------------------- figures
proc_cpu() { # pid -> user + system CPU seconds so far
	awk '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / 100 }' "/proc/$1/stat"
}
# median/best of a space-separated list; ratio A B is A/B ("n/a" when either is missing or B is 0).
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END{if (NR) print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
best() { tr ' ' '\n' <<<"$1" | grep . | sort -g | head -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || a == "n/a" || b == "n/a" || b+0 == 0) print "n/a"; else printf "%.2f", a/b }'; }
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}'; }
