#!/bin/sh
# The compose demo's job: about a minute of "training" that writes what a real
# job writes: a metrics file appended every step, a checkpoint every 10 steps
# (4 MiB each), a final model, and a line per step on stdout (stderr every 10
# steps). Its exit code goes to $JOB_STATUS, which the collector waits for.
set -eu
out=${OUTPUTS_PATH:-/outputs}
steps=${STEPS:-60}
trap 'code=$?; echo "$code" > "${JOB_STATUS:-/run/job/exit-code}"' EXIT
trap 'exit 143' TERM INT

mkdir -p "$out/checkpoints"
echo "job: writing $steps steps of outputs to $out"
start=1
if [ -f "$out/metrics.csv" ]; then
	# A resumed run: the collector restored the outputs of the last attempt.
	start=$(($(wc -l < "$out/metrics.csv") + 1))
	echo "job: resuming at step $start"
fi
step=$start
while [ "$step" -le "$steps" ]; do
	loss=$(awk -v s="$step" 'BEGIN { printf "%.4f", 2.5 / (1 + s / 10) }')
	echo "$step,$loss" >> "$out/metrics.csv"
	echo "step $step/$steps loss=$loss"
	if [ $((step % 10)) -eq 0 ]; then
		dd if=/dev/urandom of="$out/checkpoints/step-$step.bin" bs=1M count=4 2>/dev/null
		echo "checkpoint step-$step.bin written" >&2
	fi
	sleep 1
	step=$((step + 1))
done
dd if=/dev/urandom of="$out/model.bin" bs=1M count=16 2>/dev/null
echo "job: done, model.bin written"
