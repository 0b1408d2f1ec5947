#!/usr/bin/env bash
# Restore alone (bench/run.sh's scenario 5, at the issue's sizes): `collector restore` from S3 into an
# empty folder, next to `rclone copy && sync` and `mc cp --recursive && sync` from the same server (the
# durability the collector gives: every file synced before it is renamed into place) and `cp -r && sync`
# from a local copy, for many small files and for one large file, on each S3 server of SERVERS. The
# tools take turns; each figure is the median of ROUNDS. Every restored tree is compared with the
# source (diff -r).
#
#   bash bench/restore.sh                        10,000 × 4 KiB and 1 GiB, versitygw and MinIO, 3 rounds
#   RESTORE_FILES=1000 RESTORE_MIB=64 ROUNDS=1 SERVERS=minio bash bench/restore.sh
#   BASELINE_BIN=/path/to/old/collector bash bench/restore.sh   adds that binary's restore
#
# rclone and mc come from ~/.cache/collector-bench/bin (installed there the first time unless
# INSTALL_PEERS=0) or PATH; versitygw and MinIO as scripts/servers.sh installs them.
set -euo pipefail
BENCH_NAME=restore-bench
# shellcheck source=bench/setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

RESTORE_FILES=${RESTORE_FILES:-10000} RESTORE_DIRS=${RESTORE_DIRS:-100} RESTORE_SIZE=${RESTORE_SIZE:-4096}
RESTORE_MIB=${RESTORE_MIB:-1024} ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-versitygw minio}

bench_build
bench_peers
BASE=""
if [ -n "${BASELINE_BIN:-}" ]; then # another collector (e.g. the previous version) restores too
	cp "$BASELINE_BIN" "$WORK/baseline" && BASE=$WORK/baseline
fi

log "generating $RESTORE_FILES × $RESTORE_SIZE B and one $RESTORE_MIB MiB file"
"$GENTREE" -dir "$WORK/src-files" -files "$RESTORE_FILES" -dirs "$RESTORE_DIRS" -size "$RESTORE_SIZE" -seed 5 2>/dev/null
"$GENTREE" -dir "$WORK/src-big" -files 1 -dirs 0 -size $((RESTORE_MIB << 20)) -seed 6 2>/dev/null

declare -A TIMES
# timed NAME CMD...: wall seconds of CMD after a sync, added to NAME's list.
timed() {
	local name=$1 t0 s
	shift
	sync
	local srv0 tool
	srv0=$(proc_cpu "$S3_PID")
	t0=$(date +%s.%N)
	("$@" >"$WORK/$name.log" 2>&1 && times >"$WORK/times") || die "$name failed: $(tail -3 "$WORK/$name.log")"
	s=$(seconds_since "$t0")
	# The CPU the tool used (its processes, sync's included) and the server's, to tell whose it was.
	tool=$(tail -n 1 "$WORK/times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }; printf "%.2f", n }')
	log "$name: $s s (CPU: tool $tool s, server $(awk -v a="$srv0" -v b="$(proc_cpu "$S3_PID")" 'BEGIN { printf "%.2f", b - a }') s)"
	TIMES[$name]+="$s "
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
turn() { # server k tool: restore k's tree with tool into $out/tool, timed, and compare it with the source
	local srv=$1 k=$2 tool=$3
	fresh
	case $tool in
	collector) timed "$srv-$k-collector" "$COLLECTOR" restore --run "r-$k" --outputs-path "$out/$tool" \
		--store "$S3URL" --state-dir "$out/state" ;;
	baseline) timed "$srv-$k-baseline" "$BASE" restore --run "b-$k" --outputs-path "$out/$tool" \
		--store "$S3URL" --state-dir "$out/state" ;;
	rclone) timed "$srv-$k-rclone" sh -c '"$1" copy "$2" "$3" && sync' sh "$RCLONE" "$srv:bench/r-$k/outputs" "$out/$tool" ;;
	mc) timed "$srv-$k-mc" sh -c '"$1" --config-dir "$2" cp --quiet --recursive "$3" "$4" >/dev/null && sync' sh \
		"$MC" "$WORK/mc" "$srv/bench/r-$k/outputs/" "$out/$tool/" ;;
	cpsync) timed "$srv-$k-cpsync" sh -c 'cp -r "$1" "$2" && sync' sh "$WORK/src-$k" "$out/$tool" ;;
	esac
	check "$out/$tool" "$WORK/src-$k"
}
TOOLS=(collector)
[ -z "$BASE" ] || TOOLS+=(baseline)
[ -z "$RCLONE" ] || TOOLS+=(rclone)
[ -z "$MC" ] || TOOLS+=(mc)
TOOLS+=(cpsync)

port=$(free_port "${BENCH_S3_PORT:-7373}")
for srv in $SERVERS; do
	start_s3 "$srv" "$port"
	s3_peers "$srv" "$port"
	log "$srv: uploading the trees"
	for k in files big; do
		"$COLLECTOR" --sync-interval 0 --outputs-path "$WORK/src-$k" --store "$S3URL" --run "r-$k" \
			--state-dir "$WORK/state-up-$srv" -- true >"$WORK/upload-$k.log" 2>&1 || die "upload of $k failed: $(tail -3 "$WORK/upload-$k.log")"
		# The baseline may not read this build's state: it restores a run it uploaded itself.
		[ -z "$BASE" ] || "$BASE" --sync-interval 0 --outputs-path "$WORK/src-$k" --store "$S3URL" --run "b-$k" \
			--state-dir "$WORK/state-up-b-$srv" -- true >"$WORK/upload-b-$k.log" 2>&1 || die "baseline upload of $k failed"
	done
	sync
	for round in $(seq "$ROUNDS"); do
		for k in files big; do
			fresh
			cp -r "$WORK/src-$k" "$out/warm"
			for i in "${!TOOLS[@]}"; do
				turn "$srv" "$k" "${TOOLS[$(((i + round - 1) % ${#TOOLS[@]}))]}"
			done
		done
	done
	fresh
	kill "$S3_PID" && wait "$S3_PID" 2>/dev/null || true
	rm -rf "$WORK/$srv-data"
done

cellof() { local m; m=$(median "${TIMES[$1]:-}"); echo "${m:-n/a}"; }
echo
echo "| restore into an empty folder, median of $ROUNDS ($(date +%F)) | collector s | baseline s | rclone copy && sync s | mc cp -r && sync s | cp -r && sync s | collector speed ÷ rclone+sync | ÷ mc+sync |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for srv in $SERVERS; do
	for k in files big; do
		what="$RESTORE_FILES × $RESTORE_SIZE B"
		[ "$k" = files ] || what="one $RESTORE_MIB MiB file"
		c=$(cellof "$srv-$k-collector")
		echo "| $what, $srv | $c | $(cellof "$srv-$k-baseline") | $(cellof "$srv-$k-rclone") | $(cellof "$srv-$k-mc") | $(cellof "$srv-$k-cpsync") | $(ratio "$(cellof "$srv-$k-rclone")" "$c")× | $(ratio "$(cellof "$srv-$k-mc")" "$c")× |"
	done
done
