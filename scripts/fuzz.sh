#!/usr/bin/env bash
# The fuzzing run (`make fuzz`): every Go fuzz target of the tree (func FuzzX
# in a *_fuzz_test.go file) for FUZZTIME each, then the file source's model
# test with MODEL_SEEDS seeds. It fails when a target finds a crasher: Go
# writes the input to the package's testdata/fuzz/FuzzX/, where it stays as
# a regression case that `make test` runs (commit it with the fix).
#
#   FUZZTIME      how long each target runs (default 60s; a Go -fuzztime: 30s, 10m, 5000x)
#   FUZZPARALLEL  fuzzing workers per target (default: go test's, the CPUs)
#   FUZZ          only the targets whose name matches this regexp
#   MODEL_SEEDS   seeds of TestFileSourceModel (default 2000; 0 skips it)
#   MODEL_STEPS   steps per seed (default 120)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-60s}
parallel=${FUZZPARALLEL:+-parallel=$FUZZPARALLEL}
only=${FUZZ:-.}
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=disable_grpc_modules"

failed=()
ran=0
start=$(date +%s)
for dir in $(grep -rl --include='*_fuzz_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for target in $(grep -h '^func Fuzz' "$dir"/*_fuzz_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | grep -E "$only" || true); do
		echo "fuzz.sh: $dir $target for $fuzztime"
		ran=$((ran + 1))
		# shellcheck disable=SC2086 # $parallel is empty or one flag
		if ! go test -run='^$' -fuzz="^$target\$" -fuzztime="$fuzztime" $parallel "$dir"; then
			failed+=("$dir $target")
		fi
	done
done

seeds=${MODEL_SEEDS:-2000}
if [ "$seeds" -gt 0 ]; then
	echo "fuzz.sh: TestFileSourceModel, $seeds seeds"
	if ! go test -count=1 -run='^TestFileSourceModel$' ./logs/ -model.seeds="$seeds" -model.steps="${MODEL_STEPS:-120}"; then
		failed+=("./logs TestFileSourceModel")
	fi
fi

echo "fuzz.sh: $ran targets, $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz.sh: failed: %s\n' "${failed[@]}" >&2
	echo "fuzz.sh: the inputs are in testdata/fuzz/ of each package (go test -run=FuzzX/NAME ./pkg replays one)" >&2
	exit 1
fi
