#!/usr/bin/env bash
# A bounded soak of the local server (127.0.0.1 only): search queries, job
# submissions over HTTP and WebSocket, and WebSocket clients together, with
# latency and resident memory printed per window. Stops by itself.
#   scripts/soak.sh [SECONDS]     (default 600; local/examples/soak.rs --help for the knobs)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/target-dir.sh
seconds=${1:-600}
cargo build --release --quiet --bin local
cargo build --release --quiet -p local --example soak
target_dir=$(cargo_target_dir)
log=$target_dir/soak/server.log
mkdir -p "$target_dir/soak"
"$target_dir/release/local" --port 0 2> "$log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null' EXIT
base=
for _ in $(seq 600); do
    base=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$log")
    [ -n "$base" ] && break
    sleep 0.1
done
[ -n "$base" ] || { cat "$log" >&2; exit 1; }
grep '^loaded' "$log"
# The server logs every request at info; keep its log, not the terminal.
"$target_dir/release/examples/soak" --base "$base" --seconds "$seconds" --server-pid "$server_pid" "${@:2}"
