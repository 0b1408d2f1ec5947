#!/usr/bin/env bash
# Benchmarks the collector side by side with cp -r, rclone and MinIO's mc on the same trees and the
# same S3 server (versitygw). See bench/README.md for what each scenario measures and the knobs.
#
#   bash bench/run.sh             full run (10+ minutes)
#   SMOKE=1 bash bench/run.sh     everything shrunk, under a minute; rclone/mc optional
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMOKE=${SMOKE:-0}
BIN_CACHE=${BENCH_BIN:-$HOME/.cache/collector-bench/bin}
S3_PORT=${BENCH_S3_PORT:-7171}
PROXY_PORT=${BENCH_PROXY_PORT:-7272}
TOOL_TIMEOUT=${BENCH_TOOL_TIMEOUT:-1800}
VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
RESULTS_DIR=${BENCH_RESULTS:-$REPO/bench/results}
if [ "$SMOKE" = 1 ]; then
	SMALL_FILES=${SMALL_FILES:-100} SMALL_DIRS=${SMALL_DIRS:-10}
	BIG_MIB=${BIG_MIB:-64}
	TREE_FILES=${TREE_FILES:-1000} TREE_DIRS=${TREE_DIRS:-10}
	IDLE_SECONDS=${IDLE_SECONDS:-5}
	IDLE_INTERVAL=${IDLE_INTERVAL:-1}
	INSTALL_PEERS=${INSTALL_PEERS:-0}
else
	SMALL_FILES=${SMALL_FILES:-10000} SMALL_DIRS=${SMALL_DIRS:-100}
	BIG_MIB=${BIG_MIB:-2048}
	TREE_FILES=${TREE_FILES:-100000} TREE_DIRS=${TREE_DIRS:-1000}
	IDLE_SECONDS=${IDLE_SECONDS:-60}
	INSTALL_PEERS=${INSTALL_PEERS:-1}
fi
SMALL_SIZE=${SMALL_SIZE:-4096}
TREE_SIZE=${TREE_SIZE:-100}
IDLE_INTERVAL=${IDLE_INTERVAL:-10}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- workspace and cleanup
BENCH_TMP=${BENCH_TMP:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BENCH_TMP/collector-bench.XXXXXX")
LOGS=$RESULTS_DIR/logs
PIDS=()
cleanup() {
	local rc=$?
	set +e
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The collector reads COLLECTOR_* from the environment: none of the caller's may leak into the runs
# (COLLECTOR_BIN is the script's own).
GIVEN_BIN=${COLLECTOR_BIN:-}
while read -r v; do unset "$v"; done < <(compgen -e | grep '^COLLECTOR_' || true)

mkdir -p "$RESULTS_DIR" "$WORK/bin"
rm -rf "$LOGS"
mkdir -p "$LOGS"

# ---------------------------------------------------------------- tools
if [ ! -x /usr/bin/time ]; then
	log "installing GNU time (apt-get)"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; } >&2 \
		|| die "/usr/bin/time is missing and could not be installed (Debian package 'time')"
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use "$S3_PORT" && die "port $S3_PORT is in use (set BENCH_S3_PORT)"
port_in_use "$PROXY_PORT" && die "port $PROXY_PORT is in use (set BENCH_PROXY_PORT)"

find_tool() { # name -> path, or empty
	local p
	for p in "$BIN_CACHE/$1" "$(go env GOPATH 2>/dev/null)/bin/$1"; do
		[ -x "$p" ] && { echo "$p"; return; }
	done
	command -v "$1" 2>/dev/null || true
}
install_tool() { # name module
	log "installing $1 ($2) into $BIN_CACHE"
	mkdir -p "$BIN_CACHE"
	GOBIN=$BIN_CACHE GOFLAGS=-mod=mod nice -n 10 go install "$2" >"$LOGS/install-$1.log" 2>&1 \
		|| { log "installing $1 failed, see $LOGS/install-$1.log"; return 1; }
}

if [ -n "$GIVEN_BIN" ]; then
	cp "$GIVEN_BIN" "$WORK/bin/collector"
else
	log "building the collector from $REPO"
	(cd "$REPO" && nice -n 10 make --no-print-directory build BIN="$WORK/bin/collector" >/dev/null) \
		|| die "the collector does not build"
fi
(cd "$REPO" && nice -n 10 go build -o "$WORK/bin/gentree" ./bench/gentree \
	&& nice -n 10 go build -o "$WORK/bin/countproxy" ./bench/countproxy) || die "bench tools do not build"
COLLECTOR=$WORK/bin/collector GENTREE=$WORK/bin/gentree COUNTPROXY=$WORK/bin/countproxy

VERSITYGW=$(find_tool versitygw)
if [ -z "$VERSITYGW" ]; then
	install_tool versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" || die "no versitygw"
	VERSITYGW=$BIN_CACHE/versitygw
fi
RCLONE=$(find_tool rclone)
MC=$(find_tool mc)
if [ "$INSTALL_PEERS" = 1 ]; then
	[ -n "$RCLONE" ] || { install_tool rclone github.com/rclone/rclone@latest && RCLONE=$BIN_CACHE/rclone; } || true
	[ -n "$MC" ] || { install_tool mc github.com/minio/mc@latest && MC=$BIN_CACHE/mc; } || true
fi
# A "mc" on PATH may be Midnight Commander: keep it only if it is MinIO's client.
if [ -n "$MC" ] && ! grep -qi 'minio' <<<"$("$MC" --version 2>&1 || true)"; then MC=""; fi
[ -n "$RCLONE" ] || log "rclone not found: its columns read n/a"
[ -n "$MC" ] || log "mc not found: its columns read n/a"

# ---------------------------------------------------------------- S3 server and peers' configuration
S3_ROOT=$WORK/s3
# mc refuses keys shorter than 3 (access) and 8 (secret) characters.
ACCESS_KEY=benchaccess SECRET_KEY=benchsecret
mkdir -p "$S3_ROOT/bench"
log "starting versitygw on 127.0.0.1:$S3_PORT"
ROOT_ACCESS_KEY=$ACCESS_KEY ROOT_SECRET_KEY=$SECRET_KEY "$VERSITYGW" --port "127.0.0.1:$S3_PORT" posix "$S3_ROOT" \
	>"$LOGS/versitygw.log" 2>&1 &
PIDS+=($!)
wait_port() { # port what
	for _ in $(seq 100); do port_in_use "$1" && return 0; sleep 0.1; done
	die "$2 did not start on port $1"
}
wait_port "$S3_PORT" versitygw

export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
s3url() { echo "s3://bench?endpoint=http://127.0.0.1:$1&region=us-east-1"; }
S3URL=$(s3url "$S3_PORT")
PROXYURL=$(s3url "$PROXY_PORT")

export RCLONE_CONFIG=$WORK/rclone.conf # absent: remotes come from the environment only
for r in BENCH:$S3_PORT BENCHP:$PROXY_PORT; do
	n=${r%%:*} p=${r#*:}
	export "RCLONE_CONFIG_${n}_TYPE=s3" "RCLONE_CONFIG_${n}_PROVIDER=Other" \
		"RCLONE_CONFIG_${n}_ENDPOINT=http://127.0.0.1:$p" "RCLONE_CONFIG_${n}_ACCESS_KEY_ID=$ACCESS_KEY" \
		"RCLONE_CONFIG_${n}_SECRET_ACCESS_KEY=$SECRET_KEY" "RCLONE_CONFIG_${n}_FORCE_PATH_STYLE=true" \
		"RCLONE_CONFIG_${n}_REGION=us-east-1"
done
MCCFG=$WORK/mc
mcx() { "$MC" --config-dir "$MCCFG" "$@"; }
if [ -n "$MC" ]; then
	mcx alias set bench "http://127.0.0.1:$S3_PORT" "$ACCESS_KEY" "$SECRET_KEY" >"$LOGS/mc-alias.log" 2>&1 \
		|| { log "mc alias set failed (see $LOGS/mc-alias.log): mc columns read n/a"; MC=""; }
fi

# ---------------------------------------------------------------- measuring helpers
declare -A WALL RSS CPU RC TOOK
# timed NAME CMD...: runs CMD under GNU time (and a timeout), logs to $LOGS/NAME.log; sets WALL, RSS
# (peak, KiB), CPU (user + system seconds), RC and, for the collector, TOOK (its last pass's took=).
timed() {
	local name=$1; shift
	local tf=$WORK/time.$name rc=0 line t0 t1
	sync
	t0=$(date +%s.%N)
	/usr/bin/time -f '%e %M %U %S' -o "$tf" timeout --signal=TERM "$TOOL_TIMEOUT" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	line=$(tail -n 1 "$tf" 2>/dev/null || true)
	# Wall time from the clock around the run (GNU time's %e has only 10 ms resolution).
	WALL[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
	RSS[$name]=$(awk '{print $2}' <<<"$line")
	CPU[$name]=$(awk 'NF >= 4 {printf "%.2f", $3 + $4}' <<<"$line")
	RC[$name]=$rc
	TOOK[$name]=$(grep -o 'msg="sync pass".*' "$LOGS/$name.log" | grep -o ' took=[^ ]*' | tail -n 1 | cut -d= -f2 || true)
	if [ "$rc" != 0 ]; then log "$name exited with $rc (see $LOGS/$name.log)"; fi
	log "$name: ${WALL[$name]:-?} s, peak RSS ${RSS[$name]:-?} KiB${TOOK[$name]:+, took=${TOOK[$name]}}"
	return 0
}
ok() { [ "${RC[$1]:-x}" = 0 ]; }
# Formatting: rate N SECONDS, mib KIB, ratio A B; "n/a" when an input is missing or zero.
rate() { awk -v n="$1" -v s="$2" 'BEGIN{ if (s == "" || s+0 <= 0) print "n/a"; else printf "%.0f", n/s }'; }
rate1() { awk -v n="$1" -v s="$2" 'BEGIN{ if (s == "" || s+0 <= 0) print "n/a"; else printf "%.1f", n/s }'; }
mib() { awk -v k="$1" 'BEGIN{ if (k == "") print "n/a"; else printf "%.0f", k/1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "n/a" || b == "n/a" || a == "" || b == "" || b+0 == 0) print "n/a"; else printf "%.2f×", a/b }'; }
# cell NAME VALUE: VALUE when the run NAME succeeded, "n/a" when it did not run, "error" when it failed.
cell() {
	if [ -z "${RC[$1]+x}" ]; then echo "n/a"; elif ok "$1"; then echo "$2"; else echo "error (rc ${RC[$1]})"; fi
}
count_files() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
stored() { # bucket-relative prefix -> number of objects versitygw holds under it
	local d=$S3_ROOT/bench/$1
	if [ -d "$d" ]; then find "$d" -type f | wc -l; else echo 0; fi
}

# ---------------------------------------------------------------- data
SMALL=$WORK/data/small BIG=$WORK/data/big TREE=$WORK/data/tree
log "generating $SMALL_FILES × $SMALL_SIZE B in $SMALL_DIRS folders"
"$GENTREE" -dir "$SMALL" -files "$SMALL_FILES" -dirs "$SMALL_DIRS" -size "$SMALL_SIZE" -seed 1 2>>"$LOGS/gentree.log"
log "generating one file of $BIG_MIB MiB"
"$GENTREE" -dir "$BIG" -files 1 -dirs 0 -size $((BIG_MIB << 20)) -seed 2 2>>"$LOGS/gentree.log"
BIG_BYTES=$((BIG_MIB << 20))
log "generating $TREE_FILES × $TREE_SIZE B in $TREE_DIRS folders"
"$GENTREE" -dir "$TREE" -files "$TREE_FILES" -dirs "$TREE_DIRS" -size "$TREE_SIZE" -seed 3 2>>"$LOGS/gentree.log"

HOST=$WORK/host
mkdir -p "$HOST"
STATE=$WORK/state

# ---------------------------------------------------------------- 1. initial sync of many small files
# keep_best NAME ROUND: the round's run becomes NAME's figure when it is the fastest so far (the disk
# the server writes to is shared and noisy; taking turns and the best of each is fair to every tool).
keep_best() {
	local r=$1-r$2
	if [ -z "${WALL[$1]+x}" ] || { ok "$r" && awk -v a="${WALL[$r]}" -v b="${WALL[$1]}" 'BEGIN{exit !(a < b)}'; }; then
		WALL[$1]=${WALL[$r]} RC[$1]=${RC[$r]} CPU[$1]=${CPU[$r]:-}
	fi
	if [ -z "${RSS[$1]+x}" ] || [ "${RSS[$r]:-0}" -gt "${RSS[$1]:-0}" ]; then RSS[$1]=${RSS[$r]}; fi
	TOOK[$1]=${TOOK[$r]:-}
}
S1_ROUNDS=${S1_ROUNDS:-$([ "$SMOKE" = 1 ] && echo 1 || echo 3)}
log "scenario 1: initial sync of $SMALL_FILES small files, to S3 in $S1_ROUNDS rounds, tools taking turns"
declare -A OBJ
for round in $(seq "$S1_ROUNDS"); do
	timed "s1-s3-collector-r$round" "$COLLECTOR" --sync-interval 0 --outputs-path "$SMALL" --store "$S3URL" \
		--run s1-collector --state-dir "$STATE/s1-r$round" -- true
	keep_best s1-s3-collector "$round"
	OBJ[s1-s3-collector]=$(stored s1-collector/outputs)
	rm -rf "$S3_ROOT/bench/s1-collector"
	if [ -n "$RCLONE" ]; then
		timed "s1-s3-rclone-r$round" "$RCLONE" copy "$SMALL" bench:bench/s1-rclone/
		keep_best s1-s3-rclone "$round"
		OBJ[s1-s3-rclone]=$(stored s1-rclone)
		rm -rf "$S3_ROOT/bench/s1-rclone"
	fi
	if [ -n "$MC" ]; then
		timed "s1-s3-mc-r$round" "$MC" --config-dir "$MCCFG" mirror "$SMALL" bench/bench/s1-mc/
		keep_best s1-s3-mc "$round"
		OBJ[s1-s3-mc]=$(stored s1-mc)
		rm -rf "$S3_ROOT/bench/s1-mc"
	fi
done
timed s1-host-collector "$COLLECTOR" --sync-interval 0 --outputs-path "$SMALL" --store "$HOST/s1-collector" \
	--run s1-collector-host --state-dir "$STATE" -- true
timed s1-host-cp cp -r "$SMALL" "$HOST/s1-cp"
[ -n "$RCLONE" ] && timed s1-host-rclone "$RCLONE" copy "$SMALL" "$HOST/s1-rclone"
OBJ[s1-host-collector]=$(count_files "$HOST/s1-collector/s1-collector-host/outputs")
OBJ[s1-host-cp]=$(count_files "$HOST/s1-cp")
OBJ[s1-host-rclone]=$(count_files "$HOST/s1-rclone")
rm -rf "$HOST"/s1-*

# ---------------------------------------------------------------- 2. one large file
S2_ROUNDS=${S2_ROUNDS:-$([ "$SMOKE" = 1 ] && echo 1 || echo 3)}
log "scenario 2: one file of $BIG_MIB MiB to S3, $S2_ROUNDS rounds, tools taking turns"
for round in $(seq "$S2_ROUNDS"); do
	timed "s2-collector-r$round" "$COLLECTOR" --sync-interval 0 --outputs-path "$BIG" --store "$S3URL" \
		--run s2-collector --state-dir "$STATE/s2-r$round" -- true
	keep_best s2-collector "$round"
	OBJ[s2-collector]=$(stat -c %s "$S3_ROOT/bench/s2-collector/outputs/big.bin" 2>/dev/null || echo missing)
	rm -rf "$S3_ROOT/bench/s2-collector"
	if [ -n "$RCLONE" ]; then
		timed "s2-rclone-r$round" "$RCLONE" copy "$BIG" bench:bench/s2-rclone/
		keep_best s2-rclone "$round"
		OBJ[s2-rclone]=$(stat -c %s "$S3_ROOT/bench/s2-rclone/big.bin" 2>/dev/null || echo missing)
		rm -rf "$S3_ROOT/bench/s2-rclone"
	fi
	if [ -n "$MC" ]; then
		timed "s2-mc-r$round" "$MC" --config-dir "$MCCFG" mirror "$BIG" bench/bench/s2-mc/
		keep_best s2-mc "$round"
		OBJ[s2-mc]=$(stat -c %s "$S3_ROOT/bench/s2-mc/big.bin" 2>/dev/null || echo missing)
		rm -rf "$S3_ROOT/bench/s2-mc"
	fi
done

# The memory budget under the worst mix: the big file and every small file in one outputs folder
# (hard links, so no extra disk).
MIXED=$WORK/data/mixed
mkdir -p "$MIXED"
cp -al "$SMALL/." "$MIXED/"
ln "$BIG/big.bin" "$MIXED/big.bin"
log "scenario 2b: the $BIG_MIB MiB file and $SMALL_FILES small files at once"
timed s2-mixed-collector "$COLLECTOR" --sync-interval 0 --outputs-path "$MIXED" --store "$S3URL" \
	--run s2-mixed --state-dir "$STATE" -- true
OBJ[s2-mixed-collector]=$(stored s2-mixed/outputs)
rm -rf "$S3_ROOT/bench/s2-mixed" "$MIXED"

# ---------------------------------------------------------------- 3. one change in a large tree
log "scenario 3: $TREE_FILES-file tree, one file changed, through the counting proxy on :$PROXY_PORT"
"$COUNTPROXY" -listen "127.0.0.1:$PROXY_PORT" -target "http://127.0.0.1:$S3_PORT" >"$LOGS/countproxy.log" 2>&1 &
PIDS+=($!)
wait_port "$PROXY_PORT" countproxy
PURL=http://127.0.0.1:$PROXY_PORT
if [ -n "$MC" ]; then
	mcx alias set benchp "$PURL" "$ACCESS_KEY" "$SECRET_KEY" >>"$LOGS/mc-alias.log" 2>&1 || die "mc alias set benchp failed"
fi
declare -A REQ REQDETAIL
# counted NAME CMD...: timed, with the proxy's counts reset before and read after.
counted() {
	local name=$1
	curl -fsS -X POST "$PURL/__reset" >/dev/null
	timed "$@"
	local json
	json=$(curl -fsS "$PURL/__count")
	REQ[$name]=$(grep -o '"total":[0-9]*' <<<"$json" | cut -d: -f2)
	# "op:PutObject":1 -> PutObject 1, largest first
	REQDETAIL[$name]=$(grep -o '"op:[A-Za-z]*":[0-9]*' <<<"$json" | sed 's/"op:\([A-Za-z]*\)":\([0-9]*\)/\2 \1/' \
		| sort -rn | awk '{printf "%s%s %s", (NR>1 ? ", " : ""), $2, $1}')
}
TREE_STATE=$WORK/state3
counted s3-init-collector "$COLLECTOR" --sync-interval 0 --outputs-path "$TREE" --store "$PROXYURL" \
	--run s3-collector --state-dir "$TREE_STATE" -- true
[ -n "$RCLONE" ] && counted s3-init-rclone "$RCLONE" copy "$TREE" benchp:bench/s3-rclone/
[ -n "$MC" ] && counted s3-init-mc "$MC" --config-dir "$MCCFG" mirror "$TREE" benchp/bench/s3-mc/
OBJ[s3-init-collector]=$(stored s3-collector/outputs)
OBJ[s3-init-rclone]=$(stored s3-rclone)
OBJ[s3-init-mc]=$(stored s3-mc)

CHANGED_REL=$(cd "$TREE" && find . -type f -name '*.bin' | sort | awk -v n="$((TREE_FILES / 2))" 'NR == n {print}')
CHANGED_REL=${CHANGED_REL#./}
sleep 1 # a visibly newer mtime, whatever the file system's timestamp granularity
printf 'changed by bench/run.sh at %s\n' "$(date +%s.%N)" >>"$TREE/$CHANGED_REL"
log "changed $CHANGED_REL"

same_as_local() { # object file -> yes/no
	if cmp -s "$TREE/$CHANGED_REL" "$1"; then echo yes; else echo "no"; fi
}
counted s3-again-collector "$COLLECTOR" --sync-interval 0 --outputs-path "$TREE" --store "$PROXYURL" \
	--run s3-collector --state-dir "$TREE_STATE" -- true
OBJ[s3-again-collector]=$(same_as_local "$S3_ROOT/bench/s3-collector/outputs/$CHANGED_REL")
if [ -n "$RCLONE" ]; then
	counted s3-again-rclone "$RCLONE" copy "$TREE" benchp:bench/s3-rclone/
	OBJ[s3-again-rclone]=$(same_as_local "$S3_ROOT/bench/s3-rclone/$CHANGED_REL")
fi
if [ -n "$MC" ]; then
	counted s3-again-mc "$MC" --config-dir "$MCCFG" mirror "$TREE" benchp/bench/s3-mc/
	OBJ[s3-again-mc]=$(same_as_local "$S3_ROOT/bench/s3-mc/$CHANGED_REL")
	if [ "${OBJ[s3-again-mc]}" != yes ]; then
		# mc mirror at its defaults leaves an existing object alone; --overwrite is what replaces it.
		counted s3-again-mc-overwrite "$MC" --config-dir "$MCCFG" mirror --overwrite "$TREE" benchp/bench/s3-mc/
		OBJ[s3-again-mc-overwrite]=$(same_as_local "$S3_ROOT/bench/s3-mc/$CHANGED_REL")
	fi
fi
# And a pass with nothing changed at all: the collector's floor.
counted s3-none-collector "$COLLECTOR" --sync-interval 0 --outputs-path "$TREE" --store "$PROXYURL" \
	--run s3-collector --state-dir "$TREE_STATE" -- true

# The same change seen by a running sidecar: the watcher marks the one file dirty, and the
# incremental pass touches nothing else (the pass logs at debug level when it uploads nothing).
log "scenario 3b: running sidecar over the tree, one more file changed"
SIDE_LOG=$LOGS/s3-sidecar-collector.log
"$COLLECTOR" --sync-interval 300 --log-level debug --outputs-path "$TREE" --store "$PROXYURL" \
	--run s3-collector --state-dir "$TREE_STATE" >"$SIDE_LOG" 2>&1 &
SIDE_PID=$!
PIDS+=("$SIDE_PID")
wait_log() { # file pattern count seconds: waits until pattern has matched count lines
	local i
	for i in $(seq $((10 * $4))); do
		[ "$(grep -c -- "$2" "$1" || true)" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
SIDE_STATUS=ok SIDE_TOOK="" SIDE_REQ="" SIDE_REQDETAIL="" SIDE_LATENCY=""
if wait_log "$SIDE_LOG" 'msg="sync pass"' 1 300; then
	sleep 2 # the first pass's checkpoint
	CHANGED2_REL=$(cd "$TREE" && find . -type f -name '*.bin' | sort | awk -v n="$((TREE_FILES / 3))" 'NR == n {print}')
	CHANGED2_REL=${CHANGED2_REL#./}
	curl -fsS -X POST "$PURL/__reset" >/dev/null
	t0=$(date +%s.%N)
	printf 'changed by bench/run.sh at %s\n' "$t0" >>"$TREE/$CHANGED2_REL"
	if wait_log "$SIDE_LOG" 'msg="sync pass".* uploaded=1 ' 1 60; then
		t1=$(date +%s.%N)
		sleep 3 # the pass's checkpoint (state to disk and to the store)
		json=$(curl -fsS "$PURL/__count")
		SIDE_REQ=$(grep -o '"total":[0-9]*' <<<"$json" | cut -d: -f2)
		SIDE_REQDETAIL=$(grep -o '"op:[A-Za-z]*":[0-9]*' <<<"$json" | sed 's/"op:\([A-Za-z]*\)":\([0-9]*\)/\2 \1/' \
			| sort -rn | awk '{printf "%s%s %s", (NR>1 ? ", " : ""), $2, $1}')
		SIDE_TOOK=$(grep 'msg="sync pass".* uploaded=1 ' "$SIDE_LOG" | tail -n 1 | grep -o ' took=[^ ]*' | cut -d= -f2)
		SIDE_LATENCY=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}')
		OBJ[s3-sidecar]=$(cmp -s "$TREE/$CHANGED2_REL" "$S3_ROOT/bench/s3-collector/outputs/$CHANGED2_REL" && echo yes || echo no)
	else
		SIDE_STATUS="the change was not uploaded within 60 s (see $SIDE_LOG)"
	fi
else
	SIDE_STATUS="no first pass (see $SIDE_LOG)"
fi
kill -TERM "$SIDE_PID" 2>/dev/null || true
wait "$SIDE_PID" 2>/dev/null || true
SIDE_CHECKPOINTS=$(grep -c 'checkpoint' "$SIDE_LOG" || true)
UPLOADED_AGAIN=$(grep -o 'msg="sync pass".*' "$LOGS/s3-again-collector.log" | grep -o ' uploaded=[0-9]*' | tail -n 1 | cut -d= -f2 || true)
UPLOADED_NONE=$(grep -o 'msg="sync pass".*' "$LOGS/s3-none-collector.log" | grep -o ' uploaded=[0-9]*' | tail -n 1 | cut -d= -f2 || true)

# ---------------------------------------------------------------- 4. idle sidecar
log "scenario 4: idle sidecar over $SMALL_FILES files, sync every $IDLE_INTERVAL s, sampled for $IDLE_SECONDS s"
IDLE_LOG=$LOGS/s4-idle-collector.log
"$COLLECTOR" --sync-interval "$IDLE_INTERVAL" --outputs-path "$SMALL" --store "$HOST/s4-collector" \
	--run s4-collector --state-dir "$STATE" >"$IDLE_LOG" 2>&1 &
IDLE_PID=$!
PIDS+=("$IDLE_PID")
IDLE_START=$(date +%s.%N)
IDLE_STATUS=ok
# Generous: the sidecar's first pass is a full scan, at start; on a loaded machine it can take a while.
for _ in $(seq $((10 * (6 * IDLE_INTERVAL + 120)))); do
	grep -q 'msg="sync pass"' "$IDLE_LOG" && break
	kill -0 "$IDLE_PID" 2>/dev/null || break
	sleep 0.1
done
IDLE_FIRST_AFTER=$(awk -v a="$IDLE_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
grep -q 'msg="sync pass"' "$IDLE_LOG" || IDLE_STATUS="no first pass (see $IDLE_LOG)"
HZ=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of PID, from the fields after the command name's ")"
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
IDLE_CPU="n/a" IDLE_RSS_AVG="n/a" IDLE_RSS_MAX="n/a" IDLE_PASSES="n/a" IDLE_EXIT="n/a"
if [ "$IDLE_STATUS" = ok ] && kill -0 "$IDLE_PID" 2>/dev/null; then
	sleep 1 # let the first pass's own work (state save, logs) finish
	passes0=$(grep -c 'msg="sync pass"' "$IDLE_LOG" || true)
	t0=$(date +%s.%N) c0=$(cpu_ticks "$IDLE_PID")
	rss_sum=0 rss_n=0 rss_max=0
	end=$(awk -v t="$t0" -v d="$IDLE_SECONDS" 'BEGIN{printf "%.3f", t + d}')
	while awk -v e="$end" -v n="$(date +%s.%N)" 'BEGIN{exit !(n < e)}'; do
		r=$(rss_kib "$IDLE_PID" 2>/dev/null) || { IDLE_STATUS="exited while idle (see $IDLE_LOG)"; break; }
		rss_sum=$((rss_sum + r)) rss_n=$((rss_n + 1))
		[ "$r" -gt "$rss_max" ] && rss_max=$r
		sleep 1
	done
	if [ "$IDLE_STATUS" = ok ]; then
		t1=$(date +%s.%N) c1=$(cpu_ticks "$IDLE_PID")
		IDLE_CPU=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
			'BEGIN{printf "%.2f", 100 * (b - a) / hz / (t1 - t0)}')
		IDLE_RSS_AVG=$(awk -v s="$rss_sum" -v n="$rss_n" 'BEGIN{printf "%.1f", s / n / 1024}')
		IDLE_RSS_MAX=$(awk -v k="$rss_max" 'BEGIN{printf "%.1f", k / 1024}')
		IDLE_PASSES=$(($(grep -c 'msg="sync pass"' "$IDLE_LOG" || true) - passes0))
	fi
fi
if kill -0 "$IDLE_PID" 2>/dev/null; then
	kill -TERM "$IDLE_PID"
	IDLE_EXIT=0
	wait "$IDLE_PID" || IDLE_EXIT=$?
fi
IDLE_FIRST_TOOK=$(grep -o 'msg="sync pass".*' "$IDLE_LOG" | head -n 1 | grep -o ' took=[^ ]*' | cut -d= -f2 || true)

# ---------------------------------------------------------------- 5. restore (auto-resume's init step)
RESTORE_FILES=${RESTORE_FILES:-1000}
RESTORE_MIB=${RESTORE_MIB:-$([ "$SMOKE" = 1 ] && echo 64 || echo 1024)}
R5=$WORK/data/r5-files R5BIG=$WORK/data/r5-big
log "scenario 5: restore of $RESTORE_FILES files × $SMALL_SIZE B, and of one $RESTORE_MIB MiB file"
"$GENTREE" -dir "$R5" -files "$RESTORE_FILES" -dirs 10 -size "$SMALL_SIZE" -seed 5 2>>"$LOGS/gentree.log"
"$GENTREE" -dir "$R5BIG" -files 1 -dirs 0 -size $((RESTORE_MIB << 20)) -seed 6 2>>"$LOGS/gentree.log"
RESTORE_BYTES=$((RESTORE_MIB << 20))
R5HOST=$WORK/r5host
declare -A R5SAME
for item in files:$R5 big:$R5BIG; do
	k=${item%%:*} src=${item#*:}
	"$COLLECTOR" --sync-interval 0 --outputs-path "$src" --store "$R5HOST" --run "r5-$k" \
		--state-dir "$WORK/state5-up" -- true >"$LOGS/s5-upload-$k.log" 2>&1 || die "scenario 5: upload of $k failed"
	"$COLLECTOR" --sync-interval 0 --outputs-path "$src" --store "$S3URL" --run "r5-$k" \
		--state-dir "$WORK/state5-up-s3" -- true >"$LOGS/s5-upload-s3-$k.log" 2>&1 || die "scenario 5: upload of $k to S3 failed"
	sync
	mkdir -p "$WORK/restored"
	timed "s5-$k-host-cp" cp -r "$R5HOST/r5-$k/outputs" "$WORK/restored/cp-$k"
	# cp leaves its bytes in the page cache; the collector fsyncs each file before the rename that
	# makes it visible. cp followed by sync is the same durability.
	timed "s5-$k-host-cpsync" sh -c 'cp -r "$1" "$2" && sync' sh "$R5HOST/r5-$k/outputs" "$WORK/restored/cpsync-$k"
	timed "s5-$k-host-collector" "$COLLECTOR" restore --run "r5-$k" --outputs-path "$WORK/restored/host-$k" \
		--store "$R5HOST" --state-dir "$WORK/state5-host"
	timed "s5-$k-s3-collector" "$COLLECTOR" restore --run "r5-$k" --outputs-path "$WORK/restored/s3-$k" \
		--store "$S3URL" --state-dir "$WORK/state5-s3"
	[ -n "$RCLONE" ] && timed "s5-$k-s3-rclone" "$RCLONE" copy "bench:bench/r5-$k/outputs" "$WORK/restored/rclone-$k"
	for who in cp cpsync host s3 rclone; do
		[ -d "$WORK/restored/$who-$k" ] || continue
		if diff -r "$src" "$WORK/restored/$who-$k" >/dev/null 2>&1; then R5SAME[$who-$k]=yes; else R5SAME[$who-$k]=no; fi
	done
	rm -rf "$WORK/restored"
done
rm -rf "$R5HOST" "$R5" "$R5BIG"

# ---------------------------------------------------------------- report
S1_C_S3=$(cell s1-s3-collector "$(rate "$SMALL_FILES" "${WALL[s1-s3-collector]}")")
S1_R_S3=$(cell s1-s3-rclone "$(rate "$SMALL_FILES" "${WALL[s1-s3-rclone]:-}")")
S1_M_S3=$(cell s1-s3-mc "$(rate "$SMALL_FILES" "${WALL[s1-s3-mc]:-}")")
S1_C_H=$(cell s1-host-collector "$(rate "$SMALL_FILES" "${WALL[s1-host-collector]}")")
S1_P_H=$(cell s1-host-cp "$(rate "$SMALL_FILES" "${WALL[s1-host-cp]}")")
S1_R_H=$(cell s1-host-rclone "$(rate "$SMALL_FILES" "${WALL[s1-host-rclone]:-}")")
BIGMB=$(awk -v b="$BIG_BYTES" 'BEGIN{print b / 1e6}')
S2_C=$(cell s2-collector "$(rate1 "$BIGMB" "${WALL[s2-collector]}")")
S2_R=$(cell s2-rclone "$(rate1 "$BIGMB" "${WALL[s2-rclone]:-}")")
S2_M=$(cell s2-mc "$(rate1 "$BIGMB" "${WALL[s2-mc]:-}")")
S2_BEST=$(awk -v r="$S2_R" -v m="$S2_M" 'BEGIN{
	rn = (r ~ /^[0-9.]+$/); mn = (m ~ /^[0-9.]+$/)
	if (rn && mn) print (r + 0 > m + 0 ? r : m); else if (rn) print r; else if (mn) print m; else print "n/a" }')
S2_BEST_WHO=$( [ "$S2_BEST" = n/a ] && echo "" || { [ "$S2_BEST" = "$S2_R" ] && echo rclone || echo mc; })

row() { # markdown table row from cells, each trimmed of surrounding spaces
	local out="" c
	for c in "$@"; do
		c=${c#"${c%%[! ]*}"} c=${c%"${c##*[! ]}"}
		out+="| $c "
	done
	echo "$out|"
}
fmt_s() { [ -n "${WALL[$1]+x}" ] && cell "$1" "${WALL[$1]}" || echo n/a; }
fmt_cpu() { [ -n "${CPU[$1]:-}" ] && cell "$1" "${CPU[$1]}" || echo n/a; }
fmt_rss() { [ -n "${RSS[$1]+x}" ] && cell "$1" "$(mib "${RSS[$1]}")" || echo n/a; }
fmt_took() { [ -n "${TOOK[$1]:-}" ] && echo "${TOOK[$1]}" || echo "—"; }
fmt_req() { [ -n "${REQ[$1]+x}" ] && echo "${REQ[$1]}" || echo n/a; }
fmt_det() { [ -n "${REQDETAIL[$1]:-}" ] && echo "${REQDETAIL[$1]}" || echo "—"; }
obj() { echo "${OBJ[$1]:-n/a}"; }

modver() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" {print $3; exit}' || true; }
GITREV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
GITDIRTY=$(cd "$REPO" && { git diff --quiet HEAD -- 2>/dev/null && [ -z "$(git ls-files --others --exclude-standard)" ]; } && echo "" || echo " + uncommitted changes")

REPORT=$WORK/report.md
{
	echo "# collector benchmarks$([ "$SMOKE" = 1 ] && echo " (SMOKE: shrunk sizes, not representative)")"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) · collector $GITREV$GITDIRTY · $(go version | awk '{print $3}') · $(nproc) cores ·" \
		"$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM · $(uname -r)"
	echo
	echo "Peers: rclone $( [ -n "$RCLONE" ] && modver "$RCLONE" || echo n/a) ·" \
		"mc $( [ -n "$MC" ] && modver "$MC" || echo n/a) ·" \
		"S3 server: versitygw (posix backend) on 127.0.0.1, same disk as the data. All tools at their defaults."
	echo
	echo "## 1. Initial sync: $SMALL_FILES files × $SMALL_SIZE B (random) in $SMALL_DIRS folders"
	echo
	echo "To S3: best wall time of $S1_ROUNDS rounds per tool, the tools taking turns, with that round's CPU (user + system)."
	echo
	row " target " " tool " " wall s " " files/s " " CPU s " " peak RSS MiB " " files stored "
	row "---" "---" "---:" "---:" "---:" "---:" "---:"
	row " S3 " " collector " " $(fmt_s s1-s3-collector) " " $S1_C_S3 " " $(fmt_cpu s1-s3-collector) " " $(fmt_rss s1-s3-collector) " " $(obj s1-s3-collector) "
	row " S3 " " rclone copy " " $(fmt_s s1-s3-rclone) " " $S1_R_S3 " " $(fmt_cpu s1-s3-rclone) " " $(fmt_rss s1-s3-rclone) " " $( [ -n "$RCLONE" ] && obj s1-s3-rclone || echo n/a) "
	row " S3 " " mc mirror " " $(fmt_s s1-s3-mc) " " $S1_M_S3 " " $(fmt_cpu s1-s3-mc) " " $(fmt_rss s1-s3-mc) " " $( [ -n "$MC" ] && obj s1-s3-mc || echo n/a) "
	row " host path " " collector " " $(fmt_s s1-host-collector) " " $S1_C_H " " $(fmt_cpu s1-host-collector) " " $(fmt_rss s1-host-collector) " " $(obj s1-host-collector) "
	row " host path " " cp -r " " $(fmt_s s1-host-cp) " " $S1_P_H " " $(fmt_cpu s1-host-cp) " " $(fmt_rss s1-host-cp) " " $(obj s1-host-cp) "
	row " host path " " rclone copy " " $(fmt_s s1-host-rclone) " " $S1_R_H " " $(fmt_cpu s1-host-rclone) " " $(fmt_rss s1-host-rclone) " " $( [ -n "$RCLONE" ] && obj s1-host-rclone || echo n/a) "
	echo
	echo "To S3, the collector against the peers: wall time $(ratio "${WALL[s1-s3-rclone]:-}" "${WALL[s1-s3-collector]:-}") faster than rclone," \
		"$(ratio "${WALL[s1-s3-mc]:-}" "${WALL[s1-s3-collector]:-}") faster than mc; CPU $(ratio "${CPU[s1-s3-collector]:-}" "${CPU[s1-s3-rclone]:-}") rclone's," \
		"$(ratio "${CPU[s1-s3-collector]:-}" "${CPU[s1-s3-mc]:-}") mc's."
	echo
	echo "## 2. One file of $BIG_MIB MiB (random) to S3"
	echo
	echo "Best wall time of $S2_ROUNDS rounds per tool, the tools taking turns; peak RSS is the highest of the rounds."
	echo
	row " tool " " wall s " " MB/s (10⁶ B) " " peak RSS MiB " " object size "
	row "---" "---:" "---:" "---:" "---:"
	row " collector " " $(fmt_s s2-collector) " " $S2_C " " $(fmt_rss s2-collector) " " $(obj s2-collector) "
	row " rclone copy " " $(fmt_s s2-rclone) " " $S2_R " " $(fmt_rss s2-rclone) " " $(obj s2-rclone) "
	row " mc mirror " " $(fmt_s s2-mc) " " $S2_M " " $(fmt_rss s2-mc) " " $(obj s2-mc) "
	echo
	echo "Memory budget under the worst mix: the $BIG_MIB MiB file and the $SMALL_FILES small files in one folder, synced at once:" \
		"$(fmt_s s2-mixed-collector) s, peak RSS $(fmt_rss s2-mixed-collector) MiB, $(obj s2-mixed-collector) objects stored."
	echo
	echo "## 3. $TREE_FILES files × $TREE_SIZE B in $TREE_DIRS folders: initial sync, then one file changed"
	echo
	echo "Requests counted by a proxy in front of the S3 server. The changed file is \`$CHANGED_REL\` (appended to)."
	echo
	row " run " " wall s " " collector took= " " requests " " requests by operation " " peak RSS MiB " " result "
	row "---" "---:" "---:" "---:" "---" "---:" "---"
	row " collector, initial " " $(fmt_s s3-init-collector) " " $(fmt_took s3-init-collector) " " $(fmt_req s3-init-collector) " " $(fmt_det s3-init-collector) " " $(fmt_rss s3-init-collector) " " $(obj s3-init-collector) objects "
	row " rclone copy, initial " " $(fmt_s s3-init-rclone) " " — " " $(fmt_req s3-init-rclone) " " $(fmt_det s3-init-rclone) " " $(fmt_rss s3-init-rclone) " " $( [ -n "$RCLONE" ] && echo "$(obj s3-init-rclone) objects" || echo n/a) "
	row " mc mirror, initial " " $(fmt_s s3-init-mc) " " — " " $(fmt_req s3-init-mc) " " $(fmt_det s3-init-mc) " " $(fmt_rss s3-init-mc) " " $( [ -n "$MC" ] && echo "$(obj s3-init-mc) objects" || echo n/a) "
	row " **collector, 1 changed** " " **$(fmt_s s3-again-collector)** " " **$(fmt_took s3-again-collector)** " " **$(fmt_req s3-again-collector)** " " $(fmt_det s3-again-collector) " " $(fmt_rss s3-again-collector) " " uploaded=${UPLOADED_AGAIN:-?}; store up to date: $(obj s3-again-collector) "
	row " rclone copy, 1 changed " " $(fmt_s s3-again-rclone) " " — " " $(fmt_req s3-again-rclone) " " $(fmt_det s3-again-rclone) " " $(fmt_rss s3-again-rclone) " " store up to date: $(obj s3-again-rclone) "
	row " mc mirror, 1 changed " " $(fmt_s s3-again-mc) " " — " " $(fmt_req s3-again-mc) " " $(fmt_det s3-again-mc) " " $(fmt_rss s3-again-mc) " " store up to date: $(obj s3-again-mc) "
	if [ -n "${RC[s3-again-mc-overwrite]+x}" ]; then
		row " mc mirror --overwrite, 1 changed " " $(fmt_s s3-again-mc-overwrite) " " — " " $(fmt_req s3-again-mc-overwrite) " " $(fmt_det s3-again-mc-overwrite) " " $(fmt_rss s3-again-mc-overwrite) " " store up to date: $(obj s3-again-mc-overwrite) "
	fi
	row " collector, nothing changed " " $(fmt_s s3-none-collector) " " $(fmt_took s3-none-collector) " " $(fmt_req s3-none-collector) " " $(fmt_det s3-none-collector) " " $(fmt_rss s3-none-collector) " " uploaded=${UPLOADED_NONE:-?} "
	echo
	echo "Wall time includes process start; for the collector also loading its state of $TREE_FILES entries."
	echo
	echo "**Running sidecar** (\`--sync-interval 300\`, watcher on), one more file changed (\`${CHANGED2_REL:-?}\`):" \
		"the incremental pass took **${SIDE_TOOK:-n/a}**; change to upload ${SIDE_LATENCY:-n/a} s (the settle time is 2 s);" \
		"store requests in all: **${SIDE_REQ:-n/a}** (${SIDE_REQDETAIL:-—}: the changed file and the run's state); store up to date: $(obj s3-sidecar); status: $SIDE_STATUS."
	echo
	echo "## 4. Idle sidecar: --sync-interval $IDLE_INTERVAL over the $SMALL_FILES-file tree (host path store)"
	echo
	row " sampled s " " CPU % of one core " " RSS MiB avg " " RSS MiB max " " first pass logged after s " " first pass took= " " pass log lines in window " " exit on SIGTERM " " status "
	row "---:" "---:" "---:" "---:" "---:" "---:" "---:" "---:" "---"
	row " $IDLE_SECONDS " " $IDLE_CPU " " $IDLE_RSS_AVG " " $IDLE_RSS_MAX " " $IDLE_FIRST_AFTER " " ${IDLE_FIRST_TOOK:-?} " " $IDLE_PASSES " " $IDLE_EXIT " " $IDLE_STATUS "
	echo
	echo "## 5. Restore (\`collector restore\`, auto-resume's init step) into an empty folder"
	echo
	echo "Page cache warm for every tool alike; each result compared with the source by \`diff -r\`."
	echo
	row " data " " tool " " wall s " " rate " " peak RSS MiB " " identical "
	row "---" "---" "---:" "---:" "---:" "---"
	for k in files big; do
		if [ $k = files ]; then what="$RESTORE_FILES × $SMALL_SIZE B"; else what="1 × $RESTORE_MIB MiB"; fi
		for who in host-cp:"cp -r (host path)" host-cpsync:"cp -r; sync (host path)" host-collector:"collector (host path)" s3-collector:"collector (S3)" s3-rclone:"rclone copy (S3)"; do
			n=s5-$k-${who%%:*} label=${who#*:}
			if [ $k = files ]; then r="$(rate "$RESTORE_FILES" "${WALL[$n]:-}") files/s"; else r="$(rate1 "$(awk -v b="$RESTORE_BYTES" 'BEGIN{print b/1e6}')" "${WALL[$n]:-}") MB/s"; fi
			case ${who%%:*} in host-cp) same=${R5SAME[cp-$k]:-n/a} ;; host-cpsync) same=${R5SAME[cpsync-$k]:-n/a} ;; host-collector) same=${R5SAME[host-$k]:-n/a} ;; s3-collector) same=${R5SAME[s3-$k]:-n/a} ;; s3-rclone) same=${R5SAME[rclone-$k]:-n/a} ;; esac
			row " $what " " $label " " $(fmt_s "$n") " " $(cell "$n" "$r") " " $(fmt_rss "$n") " " $same "
		done
	done
	echo
	echo "## Acceptance figures"
	echo
	row " figure " " value "
	row "---" "---:"
	row " (1) collector files/s ÷ rclone files/s (S3) " " $(ratio "$S1_C_S3" "$S1_R_S3") "
	row " (1) collector files/s ÷ mc files/s (S3) " " $(ratio "$S1_C_S3" "$S1_M_S3") "
	row " (1) collector files/s ÷ cp -r files/s (host path) " " $(ratio "$S1_C_H" "$S1_P_H") "
	row " (1) collector files/s ÷ rclone files/s (host path) " " $(ratio "$S1_C_H" "$S1_R_H") "
	row " (2) collector MB/s ÷ best of rclone/mc MB/s " " $(ratio "$S2_C" "$S2_BEST") (${S2_C} vs ${S2_BEST}${S2_BEST_WHO:+ $S2_BEST_WHO}) "
	row " (2) collector peak RSS, $BIG_MIB MiB file " " $(fmt_rss s2-collector) MiB "
	row " (3) collector pass, 1 changed of $TREE_FILES: wall / took= " " $(fmt_s s3-again-collector) s / $(fmt_took s3-again-collector) "
	row " (3) collector store requests, 1 changed / nothing changed " " $(fmt_req s3-again-collector) / $(fmt_req s3-none-collector) "
	row " (2) collector peak RSS, $BIG_MIB MiB file + $SMALL_FILES files at once " " $(fmt_rss s2-mixed-collector) MiB "
	row " (3) running sidecar: incremental pass took= / store requests (1 changed of $TREE_FILES) " " ${SIDE_TOOK:-n/a} / ${SIDE_REQ:-n/a} "
	row " (4) idle CPU, % of one core " " $IDLE_CPU "
	row " (4) idle RSS, MiB (avg / max) " " $IDLE_RSS_AVG / $IDLE_RSS_MAX "
	row " (restore) collector ÷ cp -r, $RESTORE_FILES files, host path " " $(ratio "$(rate "$RESTORE_FILES" "${WALL[s5-files-host-collector]:-}")" "$(rate "$RESTORE_FILES" "${WALL[s5-files-host-cp]:-}")") "
	row " (restore) collector ÷ cp -r, $RESTORE_MIB MiB file, host path " " $(ratio "$(rate "$RESTORE_BYTES" "${WALL[s5-big-host-collector]:-}")" "$(rate "$RESTORE_BYTES" "${WALL[s5-big-host-cp]:-}")") "
	row " (restore) collector ÷ (cp -r; sync), $RESTORE_FILES files / $RESTORE_MIB MiB file, host path " " $(ratio "$(rate "$RESTORE_FILES" "${WALL[s5-files-host-collector]:-}")" "$(rate "$RESTORE_FILES" "${WALL[s5-files-host-cpsync]:-}")") / $(ratio "$(rate "$RESTORE_BYTES" "${WALL[s5-big-host-collector]:-}")" "$(rate "$RESTORE_BYTES" "${WALL[s5-big-host-cpsync]:-}")") "
	echo
	echo "Logs of every run: \`bench/results/logs/\`."
} >"$REPORT"
cp "$REPORT" "$RESULTS_DIR/latest.md"
cat "$REPORT"
log "written $RESULTS_DIR/latest.md"
