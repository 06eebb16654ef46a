#!/usr/bin/env bash
# Paired A/B of echo servers in fresh child processes of echo bench binaries.
#
#   scripts/echo_ab.sh CONNS ROUNDS SECS LABEL:BINARY:SERVER[:VAR=VALUE,...] ...
#
# Each round runs every spec once, in the order given, as
# `BINARY --child SERVER CONNS 500 SECS` (the bench's own child mode, server on core 0,
# load generator on core 1), with the spec's environment variables set. Then, against
# the first spec: the median and range over rounds of the per-round msg/s ratio (with a
# 95% bootstrap interval of that median, and in how many rounds it was above 1) and of
# the server CPU time per message, counting only rounds where neither run lost more than
# 5% of the window to other processes; and the median per-round difference of the
# server's user-mode time per message (tick resolution: use windows of a few seconds). Binaries: `cargo bench -p green-benches --bench echo --no-run`
# prints the path (target/release/deps/echo-*); copy one aside before rebuilding.
#
# Example (mio, mio with an 80-spin poll, and green, from one binary):
#   B=$(ls -t target/release/deps/echo-* | grep -v '\.d$' | head -1)
#   scripts/echo_ab.sh 1000 10 1.5 mio:$B:mio spin80:$B:mio:GREEN_ECHO_MIO_SPIN=80 green:$B:green
set -euo pipefail
conns=$1 rounds=$2 secs=$3
shift 3
out=$(mktemp)
for r in $(seq 1 "$rounds"); do
    for spec in "$@"; do
        IFS=: read -r label bin server vars <<< "$spec"
        envs=()
        if [ -n "${vars:-}" ]; then IFS=, read -r -a envs <<< "$vars"; fi
        line=$(env "${envs[@]}" "$bin" --child "$server" "$conns" 500 "$secs" | grep '^RESULT ')
        echo "$r $label $line" | tee -a "$out" >&2
    done
done
python3 - "$out" <<'PY'
import random, statistics as st, sys


def median_interval(xs, reps=2000):
    """95% bootstrap interval of the median of xs (resampling rounds, fixed seed)."""
    rng = random.Random(1)
    meds = sorted(st.median(rng.choices(xs, k=len(xs))) for _ in range(reps))
    return meds[int(0.025 * reps)], meds[int(0.975 * reps) - 1]


rows = {}
labels = []
for line in open(sys.argv[1]):
    p = line.split()
    r, label = int(p[0]), p[1]
    # RESULT msg/s p50_us p99_us server_cpu client_cpu stolen server_user
    msgs, srv, stolen = float(p[3]), float(p[6]), float(p[8])
    user = float(p[9]) if len(p) > 9 else 0.0
    rows.setdefault(r, {})[label] = (msgs, srv * 1e9 / msgs, stolen, user * 1e9 / msgs)
    if label not in labels:
        labels.append(label)
base = labels[0]
for label in labels:
    runs = [d[label] for d in rows.values() if label in d]
    line = (f"{label:12s} msg/s {st.median(x[0] for x in runs):9.0f}  server ns/msg "
            f"{st.median(x[1] for x in runs):6.0f} (user {st.median(x[3] for x in runs):4.0f})")
    pairs = [(d[label], d[base]) for d in rows.values()
             if label in d and base in d and d[label][2] <= 0.05 and d[base][2] <= 0.05]
    if label != base and pairs:
        t = [a[0] / b[0] for a, b in pairs]
        n = [a[1] / b[1] for a, b in pairs]
        u = [a[3] - b[3] for a, b in pairs]
        lo, hi = median_interval(t)
        line += (f"  | vs {base}: {len(pairs)} rounds, msg/s {st.median(t):.3f} "
                 f"[{min(t):.2f}-{max(t):.2f}; median's 95% interval {lo:.3f}-{hi:.3f}], "
                 f"ahead in {sum(x > 1 for x in t)}, ns/msg {st.median(n):.3f}, "
                 f"user ns/msg {st.median(u):+.0f}")
    print(line)
PY
rm -f "$out"
