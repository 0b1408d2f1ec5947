#!/usr/bin/env bash
# bench/gpu-check.sh [LOAD COMMAND...]: on a machine with an NVIDIA GPU, runs
# the collector (wrapper mode, --resources-interval 1) around a loop that
# prints nvidia-smi's figures every second, with LOAD (e.g. a PyTorch
# matmul loop) running in the background, then prints the collector's
# per-second GPU figures, nvidia-smi's, and summary.json's GPUs.
# The units match: util %, memory MiB (the collector's bytes / 2^20 are shown
# as MiB), power W, temperature C, SM clock MHz. Needs Go, make, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
# The binary as it ships: make build's static one, which reads NVML through
# its embedded helper (collector-nvml, started from memory).
make -s build BIN="$dir/collector"
load=("$@")
script='
if [ $# -gt 0 ]; then "$@" & fi
for i in $(seq 8); do
  nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used,memory.total,power.draw,temperature.gpu,clocks.sm --format=csv,noheader,nounits
  sleep 1
done
kill %1 2>/dev/null || true'
"$dir/collector" --store "$dir/store" --run gpu-check --state-dir "$dir/state" --outputs-path "$dir/outputs" \
  --resources-interval 1 --sync-interval 2 -- sh -c "$script" sh "${load[@]}" >"$dir/smi.csv" 2>"$dir/collector.log"
grep -E 'no GPU|sampling resources|source failed' "$dir/collector.log" || true
echo "== collector (timestamp, gpuN fields; memory in MiB)"
zcat "$dir"/store/gpu-check/resources/*.jsonl.gz | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    g = {k: (round(v / 2**20) if k.endswith("_bytes") else v) for k, v in r.items() if k.startswith("gpu")}
    print(r["timestamp"], g)'
echo "== nvidia-smi (timestamp, index, util %, memory used MiB, total MiB, power W, temperature C, SM MHz)"
cat "$dir/smi.csv"
echo "== summary.json gpus"
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["gpus"], indent=1))' "$dir/store/gpu-check/resources/summary.json"
echo "(files in $dir)"
