#!/usr/bin/env bash
# Restore alone (bench/run.sh's scenario 5, at the issue's sizes): `collector restore` from S3 into an
# empty folder, next to `rclone copy` from the same S3 server and `cp -r; sync` from a local copy,
# for many small files and for one large file. The tools take turns; each figure is the best of
# ROUNDS. Every restored tree is compared with the source (diff -r).
#
#   bash bench/restore.sh                        10,000 × 4 KiB and 1 GiB, best of 3
#   RESTORE_FILES=1000 RESTORE_MIB=64 ROUNDS=1 bash bench/restore.sh
#   BASELINE_BIN=/path/to/old/collector bash bench/restore.sh   adds that binary's restore
#
# rclone is taken from ~/.cache/collector-bench/bin (bench/run.sh installs it there) or PATH;
# versitygw from there or ~/.cache/collector-test/bin.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESTORE_FILES=${RESTORE_FILES:-10000} RESTORE_DIRS=${RESTORE_DIRS:-100} RESTORE_SIZE=${RESTORE_SIZE:-4096}
RESTORE_MIB=${RESTORE_MIB:-1024} ROUNDS=${ROUNDS:-3}
S3_PORT=${BENCH_S3_PORT:-7373}
BIN_CACHE=${BENCH_BIN:-$HOME/.cache/collector-bench/bin}

log() { printf '[restore-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
find_tool() { # name -> path, or empty
	local p
	for p in "$BIN_CACHE/$1" "$HOME/.cache/collector-test/bin/$1" "$(go env GOPATH 2>/dev/null)/bin/$1"; do
		[ -x "$p" ] && { echo "$p"; return; }
	done
	command -v "$1" 2>/dev/null || true
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/collector-restore-bench.XXXXXX")
PID=""
cleanup() {
	local rc=$?
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ "${KEEP_TMP:-0}" = 1 ] && log "kept $WORK" || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
while read -r v; do unset "$v"; done < <(compgen -e | grep '^COLLECTOR_' || true)

log "building the collector and gentree"
(cd "$REPO" && make --no-print-directory build BIN="$WORK/collector" >/dev/null \
	&& go build -o "$WORK/gentree" ./bench/gentree) || die "build failed"
BASE=""
if [ -n "${BASELINE_BIN:-}" ]; then # another collector (e.g. the previous version) restores too
	cp "$BASELINE_BIN" "$WORK/baseline" && BASE=$WORK/baseline
fi
VERSITYGW=$(find_tool versitygw)
[ -n "$VERSITYGW" ] || die "no versitygw (run scripts/servers.sh install or bench/run.sh once)"
RCLONE=$(find_tool rclone)
[ -n "$RCLONE" ] || log "rclone not found: its rows read n/a"

ACCESS_KEY=benchaccess SECRET_KEY=benchsecret
mkdir -p "$WORK/s3/bench"
ROOT_ACCESS_KEY=$ACCESS_KEY ROOT_SECRET_KEY=$SECRET_KEY "$VERSITYGW" --port "127.0.0.1:$S3_PORT" posix "$WORK/s3" \
	>"$WORK/versitygw.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
S3URL="s3://bench?endpoint=http://127.0.0.1:$S3_PORT&region=us-east-1"
export RCLONE_CONFIG=$WORK/rclone.conf RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
	RCLONE_CONFIG_BENCH_ENDPOINT=http://127.0.0.1:$S3_PORT RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$ACCESS_KEY \
	RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$SECRET_KEY RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true \
	RCLONE_CONFIG_BENCH_REGION=us-east-1

log "generating $RESTORE_FILES × $RESTORE_SIZE B and one $RESTORE_MIB MiB file, and uploading them"
"$WORK/gentree" -dir "$WORK/src-files" -files "$RESTORE_FILES" -dirs "$RESTORE_DIRS" -size "$RESTORE_SIZE" -seed 5 2>/dev/null
"$WORK/gentree" -dir "$WORK/src-big" -files 1 -dirs 0 -size $((RESTORE_MIB << 20)) -seed 6 2>/dev/null
for k in files big; do
	"$WORK/collector" --sync-interval 0 --outputs-path "$WORK/src-$k" --store "$S3URL" --run "r-$k" \
		--state-dir "$WORK/state-up" -- true >"$WORK/upload-$k.log" 2>&1 || die "upload of $k failed: $(tail -3 "$WORK/upload-$k.log")"
	# The baseline may not read this build's state: it restores a run it uploaded itself.
	[ -z "$BASE" ] || "$BASE" --sync-interval 0 --outputs-path "$WORK/src-$k" --store "$S3URL" --run "b-$k" \
		--state-dir "$WORK/state-up-b" -- true >"$WORK/upload-b-$k.log" 2>&1 || die "baseline upload of $k failed"
done
sync

declare -A BEST
# timed NAME CMD...: wall seconds of CMD after a sync, kept when the best so far for NAME.
timed() {
	local name=$1 t0 t1 s; shift
	sync
	t0=$(date +%s.%N)
	"$@" >"$WORK/$name.log" 2>&1 || die "$name failed: $(tail -3 "$WORK/$name.log")"
	t1=$(date +%s.%N)
	s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
	log "$name: $s s"
	if [ -z "${BEST[$name]:-}" ] || awk -v a="$s" -v b="${BEST[$name]}" 'BEGIN{exit !(a < b)}'; then BEST[$name]=$s; fi
}
check() { # dir src
	diff -r "$2" "$1" >/dev/null || die "$1 differs from $2"
}
# Each tool writes into an empty folder right after what the tool before it
# wrote was removed, the first one of a round after an untimed copy of the same
# tree: on a VM that hands memory freed a while ago back to its host (this one),
# writing into such memory costs several times the CPU, so a tool that came
# after a pause, or after others that left their files in place, would be
# measured slower for it. The order of the tools turns with each round.
out=$WORK/out
fresh() { rm -rf "$out"; mkdir -p "$out"; }
turn() { # k tool: restore k's tree with tool into $out/tool, timed, and compare it with the source
	local k=$1 tool=$2
	fresh
	case $tool in
	collector) timed "$k-collector" "$WORK/collector" restore --run "r-$k" --outputs-path "$out/$tool" \
		--store "$S3URL" --state-dir "$out/state" ;;
	baseline) timed "$k-baseline" "$BASE" restore --run "b-$k" --outputs-path "$out/$tool" \
		--store "$S3URL" --state-dir "$out/state" ;;
	rclone) timed "$k-rclone" "$RCLONE" copy "bench:bench/r-$k/outputs" "$out/$tool" ;;
	cpsync) timed "$k-cpsync" sh -c 'cp -r "$1" "$2" && sync' sh "$WORK/src-$k" "$out/$tool" ;;
	esac
	check "$out/$tool" "$WORK/src-$k"
}
TOOLS=(collector)
[ -z "$BASE" ] || TOOLS+=(baseline)
[ -z "$RCLONE" ] || TOOLS+=(rclone)
TOOLS+=(cpsync)
for round in $(seq "$ROUNDS"); do
	for k in files big; do
		fresh; cp -r "$WORK/src-$k" "$out/warm"
		for i in "${!TOOLS[@]}"; do
			turn "$k" "${TOOLS[$(((i + round - 1) % ${#TOOLS[@]}))]}"
		done
	done
done
fresh
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || a+0 == 0) print "n/a"; else printf "%.2f×", b/a }'; }
echo
echo "| restore into an empty folder (best of $ROUNDS) | collector | baseline | rclone copy | cp -r; sync | collector speed ÷ rclone |"
echo "|---|---|---|---|---|---|"
echo "| $RESTORE_FILES × $RESTORE_SIZE B | ${BEST[files-collector]} s | ${BEST[files-baseline]:-n/a} s | ${BEST[files-rclone]:-n/a} s | ${BEST[files-cpsync]} s | $(ratio "${BEST[files-collector]}" "${BEST[files-rclone]:-}") |"
echo "| one $RESTORE_MIB MiB file | ${BEST[big-collector]} s | ${BEST[big-baseline]:-n/a} s | ${BEST[big-rclone]:-n/a} s | ${BEST[big-cpsync]} s | $(ratio "${BEST[big-collector]}" "${BEST[big-rclone]:-}") |"
