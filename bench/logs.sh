#!/usr/bin/env bash
# Log collection through the wrapper: LINES lines of about 100 bytes (1,000,000: about 100 MB) printed
# by a command, once alone, once through a pipe to `cat` (the floor of any pass-through: every byte
# crosses a pipe and is written again by another process) and once wrapped by the collector (host-path
# store, logs on, resources off), the output going to a file in all three cases. Prints, per round:
#   - the command's own wall time alone, piped and wrapped (measured inside the command), and the
#     slowdowns against alone;
#   - the collector's CPU (user + system of the whole wrapped run, less the command's CPU alone), per 100 MB;
#   - the collector's peak RSS;
#   - lines collected (from `collector logs`) against lines printed.
#
#   bash bench/logs.sh                 1,000,000 lines, 3 rounds
#   LINES=100000 ROUNDS=1 bash bench/logs.sh
#   BASELINE_BIN=/path/to/old/collector bash bench/logs.sh   adds the command's time wrapped by that binary
#   SIDECAR_ARGS=--report=false bash bench/logs.sh           extra flags for this checkout's collector
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LINES=${LINES:-1000000}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

(cd "$REPO" && make --no-print-directory build BIN="$WORK/collector" >/dev/null)
BASE=""
if [ -n "${BASELINE_BIN:-}" ]; then
	cp "$BASELINE_BIN" "$WORK/baseline" && BASE=$WORK/baseline
fi

# The command: numbered lines of 100 bytes, on stdout, its wall time written to fd 3's file.
cat >"$WORK/job.sh" <<EOF
#!/bin/sh
s=\$(date +%s.%N)
awk 'BEGIN { pad = sprintf("%90s", ""); gsub(/ /, "x", pad); for (i = 0; i < $LINES; i++) printf "%08d %s\n", i, pad }'
e=\$(date +%s.%N)
echo "\$s \$e" >"\$JOB_TIMES"
EOF
chmod +x "$WORK/job.sh"

secs() { awk '{ printf "%.3f", $2 - $1 }' "$1"; }

printf '%-6s %8s %8s %10s %14s %16s %15s %12s %10s %11s\n' round alone_s piped_s wrapped_s piped_slowdown wrapped_slowdown cpu_s_per_100MB peak_rss_MiB collected baseline_s
for round in $(seq 1 "$ROUNDS"); do
	# Alone.
	JOB_TIMES=$WORK/alone.times /usr/bin/time -f '%U %S %M' -o "$WORK/alone.rusage" "$WORK/job.sh" >"$WORK/alone.out"
	bytes=$(stat -c %s "$WORK/alone.out")
	# Piped through cat.
	JOB_TIMES=$WORK/piped.times "$WORK/job.sh" | cat >"$WORK/piped.out"
	# Wrapped.
	rm -rf "$WORK/store" "$WORK/state"
	JOB_TIMES=$WORK/wrapped.times /usr/bin/time -f '%U %S %M' -o "$WORK/wrapped.rusage" \
		"$WORK/collector" --store "$WORK/store" --run bench --outputs-path "$WORK/outputs" --state-dir "$WORK/state" \
		--resources-interval 0 --log-level warn ${SIDECAR_ARGS:-} -- "$WORK/job.sh" >"$WORK/wrapped.out"
	cmp -s "$WORK/alone.out" "$WORK/wrapped.out" || { echo "the pass-through differs from the command's output" >&2; exit 1; }
	baseline=n/a
	if [ -n "$BASE" ]; then
		rm -rf "$WORK/store-b" "$WORK/state-b"
		JOB_TIMES=$WORK/baseline.times "$BASE" --store "$WORK/store-b" --run bench --outputs-path "$WORK/outputs" \
			--state-dir "$WORK/state-b" --resources-interval 0 --log-level warn -- "$WORK/job.sh" >"$WORK/baseline.out"
		baseline=$(secs "$WORK/baseline.times")
	fi
	collected=$("$WORK/collector" logs --store "$WORK/store" --run bench | wc -l)
	read -r au as _ <"$WORK/alone.rusage"
	read -r wu ws wrss <"$WORK/wrapped.rusage"
	alone=$(secs "$WORK/alone.times")
	wrapped=$(secs "$WORK/wrapped.times")
	piped=$(secs "$WORK/piped.times")
	awk -v r="$round" -v a="$alone" -v p="$piped" -v w="$wrapped" -v au="$au" -v as="$as" -v wu="$wu" -v ws="$ws" \
		-v rss="$wrss" -v b="$bytes" -v c="$collected" -v n="$LINES" -v bl="$baseline" 'BEGIN {
		cpu = (wu + ws) - (au + as)
		printf "%-6s %8.2f %8.2f %10.2f %13.1f%% %15.1f%% %15.2f %12.1f %10s %11s\n", r, a, p, w, (p / a - 1) * 100, (w / a - 1) * 100, cpu / (b / 1e8), rss / 1024, c "/" n, bl
	}'
done
