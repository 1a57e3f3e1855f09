#!/usr/bin/env bash
# A bounded soak of the local server (127.0.0.1 only): search queries, job
# submissions over HTTP and WebSocket, and WebSocket clients together, with
# latency and resident memory printed per window. Stops by itself.
#   scripts/soak.sh [SECONDS]     (default 600; local/examples/soak.rs --help for the knobs)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
cargo build --release --quiet --bin local
cargo build --release --quiet -p local --example soak
mkdir -p target/soak
target/release/local --port 0 2> target/soak/server.log &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null' EXIT
base=
for _ in $(seq 600); do
    base=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' target/soak/server.log)
    [ -n "$base" ] && break
    sleep 0.1
done
[ -n "$base" ] || { cat target/soak/server.log >&2; exit 1; }
grep '^loaded' target/soak/server.log
# The server logs every request at info; keep its log, not the terminal.
target/release/examples/soak --base "$base" --seconds "$seconds" --server-pid "$server_pid" "${@:2}"
