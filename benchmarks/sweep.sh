#!/usr/bin/env bash
# Run time_to_quality.py for each config given, one after another (never in parallel: the
# machine has 2 cores and a concurrent run would slow the one being timed), keeping each run's
# JSON lines in benchmarks/results/<config>-<budget>s.jsonl.
#   BUDGET=600 bash benchmarks/sweep.sh benchmarks/sweeps/*.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${BUDGET:-600}"
mkdir -p benchmarks/results
for config in "$@"; do
    out="benchmarks/results/$(basename "$config" .yaml)-${budget}s.jsonl"
    echo "== $config ($budget s) -> $out"
    python benchmarks/time_to_quality.py --config "$config" --budget-s "$budget" --points "${POINTS:-5}" | tee "$out"
done
