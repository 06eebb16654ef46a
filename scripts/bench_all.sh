#!/usr/bin/env bash
# Run every benchmark in order, redraw docs/benchmarks.svg and print the result tables of
# docs/benchmarks.md (scripts/bench_summary.py; `--update docs/benchmarks.md` writes them
# into the document). About seven minutes once built; run it on an otherwise idle machine.
#
# The defaults below are the settings of the tables in docs/benchmarks.md; set any of
# them in the environment to override. Other knobs are described at the top of each
# benches/benches/*.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
export GREEN_ECHO_ROUNDS="${GREEN_ECHO_ROUNDS:-9}"
export GREEN_ECHO_SECS="${GREEN_ECHO_SECS:-1.5}"
export GREEN_SLOWDOWN_ROUNDS="${GREEN_SLOWDOWN_ROUNDS:-7}"
export GREEN_SCALE_ROUNDS="${GREEN_SCALE_ROUNDS:-3}"
export GREEN_SCALE_N="${GREEN_SCALE_N:-10000,100000,1000000}"
out="${GREEN_BENCH_OUT:-target/green-bench}"
mkdir -p "$out"
# The log keeps what only the bench output has (the echo bench's paired ratios), for
# bench_summary.py.
log="$out/bench_all.log"
: > "$log"
for b in switch hub_switch spawn instr slowdown scale echo http; do
    echo "=== cargo bench -p green-benches --bench $b" | tee -a "$log"
    cargo bench -p green-benches --bench "$b" 2>&1 \
        | grep -v '^\s*Compiling\|^warning\|^\s*|\|^\s*=\|^\s*-->' | tee -a "$log" || true
done
python3 scripts/bench_chart.py
python3 scripts/bench_summary.py
