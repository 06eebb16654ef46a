#!/usr/bin/env bash
# Runs the stress harness (examples/stress.rs) against an example server running in
# its own process, so that the figures are the server's alone:
#
#   scripts/stress.sh [SERVER] [STRESS OPTIONS...]
#
# SERVER is echo_server (default) or monkey_echo_server. Builds both in release mode,
# starts the server on a free port with --quiet (under `ulimit -n $STRESS_ULIMIT` if
# that is set), passes its address and pid to the harness, and stops it afterwards.
# The harness's exit code is the script's.
set -euo pipefail
cd "$(dirname "$0")/.."
server=echo_server
if [[ $# -gt 0 && $1 != -* ]]; then
    server=$1
    shift
fi
case $server in
echo_server | monkey_echo_server) ;;
*)
    echo "usage: scripts/stress.sh [echo_server|monkey_echo_server] [stress options...]" >&2
    exit 2
    ;;
esac
cargo build --release --quiet --example "$server" --example stress
dir=${CARGO_TARGET_DIR:-target}/release/examples
out=$(mktemp)
(
    if [[ -n ${STRESS_ULIMIT:-} ]]; then ulimit -n "$STRESS_ULIMIT"; fi
    exec "$dir/$server" --addr 127.0.0.1:0 --quiet
) >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
addr=
for _ in $(seq 100); do
    addr=$(grep -oE '127\.0\.0\.1:[0-9]+' "$out" | head -n 1 || true)
    [[ -n $addr ]] && break
    sleep 0.1
done
if [[ -z $addr ]]; then
    echo "$server did not start" >&2
    exit 1
fi
"$dir/stress" --addr "$addr" --server-pid "$pid" "$@"
