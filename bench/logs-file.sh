#!/usr/bin/env bash
# A file source keeping up with a fast log (issue 10): a writer appends lines of about 100 bytes to
# a file at RATE_MB MB/s for DURATION seconds (50 MB/s for 10 s: 500 MB), paced every 10 ms, while
#   - the collector runs as a sidecar with `--logs file:PATH` into a host-path store (resources off),
#   - then, on a fresh file, `tail -F PATH | gzip > out.gz` does the same job.
# Reported per round, for each:
#   - the lag at the end: from the writer's last line to the tool having read every line (the
#     collector's collector_logs_lines_total; gzip's bytes read from the pipe) and, for the
#     collector, to every line being in the store (its spool empty, then counted in the chunks);
#   - CPU (user + system) from the writer's start to that moment, in core·s per 100 MB written;
#   - peak RSS (tail and gzip added);
#   - lines the tool ends with against lines written (`collector logs` after SIGTERM; zcat of out.gz).
# The collector's chunks are gzip at the fastest level; gzip runs at its default level (6).
#
#   bash bench/logs-file.sh                          50 MB/s for 10 s, 3 rounds
#   DURATION=20 RATE_MB=50 ROUNDS=1 bash bench/logs-file.sh
#   SIDECAR_ARGS="--logs-chunk-age 1" bash bench/logs-file.sh   extra flags for the collector
#   COLLECTOR_BIN=/tmp/prev/collector bash bench/logs-file.sh    a given binary
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10} RATE_MB=${RATE_MB:-50} LINE=${LINE:-100}
ROUNDS=${ROUNDS:-3}
PROBE_PORT=${BENCH_PROBE_PORT:-7391}
read -r -a EXTRA <<<"${SIDECAR_ARGS:-}"

log() { printf '[logs-file %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/collector-logs-file.XXXXXX")
PIDS=()
cleanup() {
	local rc=$?
	set +e
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ "${KEEP_TMP:-0}" = 1 ] && log "kept $WORK" || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# The collector refuses a COLLECTOR_ variable that is not a setting: COLLECTOR_BIN is the script's.
GIVEN_BIN=${COLLECTOR_BIN:-}
while read -r v; do unset "$v"; done < <(compgen -e | grep '^COLLECTOR_' || true)
mkdir -p "$WORK/bin"
(exec 3<>"/dev/tcp/127.0.0.1/$PROBE_PORT") 2>/dev/null && die "port $PROBE_PORT is in use (set BENCH_PROBE_PORT)"

if [ -n "$GIVEN_BIN" ]; then
	cp "$GIVEN_BIN" "$WORK/bin/collector"
else
	log "building the collector from $REPO"
	(cd "$REPO" && nice -n 19 make --no-print-directory build BIN="$WORK/bin/collector" >/dev/null) || die "the collector does not build"
fi

# The writer: numbered lines of LINE bytes (newline included), RATE bytes a second in slices every
# 10 ms against a fixed schedule; prints the lines written, its start and end (Unix ns), its rate.
mkdir -p "$WORK/writer"
cat >"$WORK/writer/main.go" <<'EOF'
package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	path := os.Args[1]
	rate, _ := strconv.Atoi(os.Args[2])
	secs, _ := strconv.ParseFloat(os.Args[3], 64)
	size, _ := strconv.Atoi(os.Args[4])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	const tick = 10 * time.Millisecond
	perTick := rate / 100 / size // lines a tick
	pad := bytes.Repeat([]byte("x"), size-10)
	buf := make([]byte, 0, perTick*size)
	start := time.Now()
	ticks := int(secs * 100)
	n := 0
	for k := 0; k < ticks; k++ {
		buf = buf[:0]
		for j := 0; j < perTick; j++ {
			buf = fmt.Appendf(buf, "%08d ", n)
			buf = append(buf, pad...)
			buf = append(buf, '\n')
			n++
		}
		if _, err := f.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		time.Sleep(time.Until(start.Add(time.Duration(k+1) * tick)))
	}
	end := time.Now()
	f.Close()
	fmt.Printf("%d %d %d %.1f\n", n, start.UnixNano(), end.UnixNano(), float64(n*size)/end.Sub(start).Seconds()/1e6)
}
EOF
(cd "$WORK/writer" && GOFLAGS= GOWORK=off go mod init writer >/dev/null 2>&1 && GOFLAGS= GOWORK=off nice -n 19 go build -o "$WORK/bin/writer" .) ||
	die "the writer does not build"

TCK=$(getconf CLK_TCK)
now() { date +%s%N; }
# cpu PID...: user + system seconds of the processes so far.
cpu() { local p t=0; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; awk -v t="$t" -v h="$TCK" 'BEGIN { printf "%.3f", t / h }'; }
# hwm PID...: peak RSS in KiB, added up.
hwm() { local p t=0; for p in "$@"; do t=$((t + $(awk '/^VmHWM/ { print $2 }' "/proc/$p/status"))); done; echo "$t"; }
metric() { curl -fsS "http://127.0.0.1:$PROBE_PORT/metrics" | awk -v m="$1" '$1 == m { printf "%d", $2 + 0; f = 1 } END { if (!f) print 0 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

# stored_lines: lines in the chunks in the store; a chunk is counted once, when whole.
declare -A COUNTED
STORED=0
stored_lines() {
	local c n
	for c in "$WORK/store/bench/logs/"*.jsonl.gz; do
		[ -e "$c" ] && [ -z "${COUNTED[$c]:-}" ] || continue
		n=$(gzip -dc "$c" 2>/dev/null | wc -l) || continue
		COUNTED[$c]=1
		STORED=$((STORED + n))
	done
	echo "$STORED"
}

run_collector() {
	rm -rf "$WORK/job" "$WORK/store" "$WORK/state" "$WORK/outputs"
	mkdir -p "$WORK/job" "$WORK/outputs"
	: >"$WORK/job/train.log"
	COUNTED=() STORED=0
	"$WORK/bin/collector" --store "$WORK/store" --run bench --outputs-path "$WORK/outputs" --state-dir "$WORK/state" \
		--resources-interval 0 --log-level warn --probe-addr "127.0.0.1:$PROBE_PORT" \
		--logs "file:$WORK/job/train.log" ${EXTRA[@]+"${EXTRA[@]}"} 2>"$WORK/collector.log" &
	local pid=$!
	PIDS+=("$pid")
	for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PROBE_PORT/readyz" 2>/dev/null && break; sleep 0.1; done
	sleep 0.5 # the source has found the file
	local c0
	c0=$(cpu "$pid")
	read -r N WSTART WEND WRATE < <("$WORK/bin/writer" "$WORK/job/train.log" $((RATE_MB * 1000000)) "$DURATION" "$LINE")
	local read_at="" stored_at="" c1=""
	while :; do
		local lines spooled t
		t=$(now)
		lines=$(metric collector_logs_lines_total)
		spooled=$(metric collector_logs_spool_bytes)
		if [ -z "$read_at" ] && [ "$lines" -ge "$N" ]; then read_at=$t; fi
		if [ -n "$read_at" ] && [ "$spooled" = 0 ]; then
			c1=$(cpu "$pid")
			# Counted after the moment is taken; if a chunk is still open, poll the store itself.
			[ "$(stored_lines)" -ge "$N" ] && { stored_at=$t; break; }
			while [ "$(stored_lines)" -lt "$N" ]; do sleep 0.05; done
			stored_at=$(now) c1=$(cpu "$pid")
			break
		fi
		sleep 0.02
	done
	C_RSS=$(hwm "$pid")
	kill -TERM "$pid"
	wait "$pid" || die "the collector exited $? at SIGTERM: $(tail -5 "$WORK/collector.log")"
	PIDS=()
	C_READ=$(secs "$WEND" "$read_at") C_STORED=$(secs "$WEND" "$stored_at")
	C_CPU=$(awk -v a="$c0" -v b="$c1" -v n="$N" -v s="$LINE" 'BEGIN { printf "%.2f", (b - a) / (n * s / 1e8) }')
	C_LINES=$("$WORK/bin/collector" logs --store "$WORK/store" --run bench | wc -l)
	C_RATE=$WRATE
}

run_tail() {
	rm -rf "$WORK/job" "$WORK/out.gz" "$WORK/fifo"
	mkdir -p "$WORK/job"
	: >"$WORK/job/train.log"
	mkfifo "$WORK/fifo"
	gzip -c <"$WORK/fifo" >"$WORK/out.gz" &
	local gz=$!
	PIDS+=("$gz")
	tail -F -n +1 "$WORK/job/train.log" >"$WORK/fifo" 2>/dev/null &
	local tl=$!
	PIDS+=("$tl")
	sleep 0.5 # gzip has opened the fifo and started
	local r0 c0
	r0=$(awk '/^rchar/ { print $2 }' "/proc/$gz/io")
	c0=$(cpu "$tl" "$gz")
	read -r N WSTART WEND WRATE < <("$WORK/bin/writer" "$WORK/job/train.log" $((RATE_MB * 1000000)) "$DURATION" "$LINE")
	local size read_at c1
	size=$(stat -c %s "$WORK/job/train.log")
	while :; do
		read_at=$(now)
		[ $(($(awk '/^rchar/ { print $2 }' "/proc/$gz/io") - r0)) -ge "$size" ] && break
		sleep 0.02
	done
	c1=$(cpu "$tl" "$gz")
	T_RSS=$(hwm "$tl" "$gz")
	kill -TERM "$tl"
	wait "$tl" 2>/dev/null || true
	wait "$gz" || die "gzip exited $?"
	PIDS=()
	T_READ=$(secs "$WEND" "$read_at")
	T_CPU=$(awk -v a="$c0" -v b="$c1" -v n="$N" -v s="$LINE" 'BEGIN { printf "%.2f", (b - a) / (n * s / 1e8) }')
	T_LINES=$(gzip -dc "$WORK/out.gz" | wc -l)
	T_RATE=$WRATE
}

log "$ROUNDS rounds of $((RATE_MB * DURATION)) MB at $RATE_MB MB/s, lines of $LINE bytes${SIDECAR_ARGS:+; collector flags: $SIDECAR_ARGS}"
printf '%-5s | %-61s | %-51s | %s\n' "" "collector --logs file:PATH (host-path store)" "tail -F PATH | gzip > out.gz" "collector / tail|gzip"
printf '%-5s | %7s %8s %9s %9s %8s %15s | %7s %8s %9s %8s %15s | %6s %6s\n' round MB/s lag_read lag_store cpu/100MB rss_MiB lines \
	MB/s lag_read cpu/100MB rss_MiB lines cpu rss
for round in $(seq 1 "$ROUNDS"); do
	run_collector
	run_tail
	awk -v r="$round" -v cr="$C_RATE" -v clr="$C_READ" -v cls="$C_STORED" -v cc="$C_CPU" -v cm="$C_RSS" -v cl="$C_LINES/$N" \
		-v tr="$T_RATE" -v tlr="$T_READ" -v tc="$T_CPU" -v tm="$T_RSS" -v tl="$T_LINES/$N" 'BEGIN {
		printf "%-5s | %7.1f %7.2fs %8.2fs %9.2f %8.1f %15s | %7.1f %7.2fs %9.2f %8.1f %15s | %5.2fx %5.2fx\n",
			r, cr, clr, cls, cc, cm / 1024, cl, tr, tlr, tc, tm / 1024, tl, cc / tc, cm / tm
	}'
done
