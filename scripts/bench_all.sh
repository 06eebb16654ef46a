#!/usr/bin/env bash
# Run every benchmark of issue 6 in order, then draw docs/benchmarks.svg.
# Extra env knobs are described at the top of each benches/*.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in switch hub_switch spawn instr slowdown scale echo; do
    echo "=== cargo bench -p green-benches --bench $b"
    cargo bench -p green-benches --bench "$b" 2>&1 | grep -v '^\s*Compiling\|^warning\|^\s*|\|^\s*=\|^\s*-->' || true
done
python3 scripts/bench_chart.py
