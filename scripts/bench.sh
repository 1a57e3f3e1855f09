#!/usr/bin/env bash
# Search benchmarks on the kit's 1M-person data set (seed 42):
#   scripts/bench.sh engine     criterion + latency percentiles of the index (no HTTP)
#   scripts/bench.sh http       the kit's sequential one-connection benchmark, over HTTP
#   scripts/bench.sh load       wrk, 64 connections, the query mix, against the local server
#   scripts/bench.sh jobs       report latency (POST to completed) and import throughput through jobs
#   scripts/bench.sh live       criterion: writes into the live index, merges, queries during a merge
#   scripts/bench.sh writes     wrk query mix with and without a steady writer; import of 5 POST to
#                               searchable; 20 imports of 1,000 at once (needs wrk)
#   scripts/bench.sh ws         10,000 WebSocket clients; push latency, in process and through
#                               the Management API (the built-in 100k people; no data file)
# The data file is made once, in bench-data/ of cargo's target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/target-dir.sh
kit=$(cd ../shared/bench && pwd)
count=${BENCH_COUNT:-1000000}
target_dir=$(cargo_target_dir)
work=$target_dir/bench-data
data=$work/people-$count.jsonl
mkdir -p "$work"
if [ "${1:-}" != ws ] && [ ! -s "$data" ]; then
    echo "generating $data"
    python3 "$kit/gen_people.py" --count "$count" --seed 42 > "$data.tmp" && mv "$data.tmp" "$data"
fi

# start_server [ARGS...]: the local server on a free port, with ARGS
# (default: --data the 1M file); sets $base and $server_pid.
start_server() {
    cargo build --release --quiet --bin local
    if [ $# -eq 0 ]; then set -- --data "$data"; fi
    "$target_dir/release/local" --port "${PORT:-0}" "$@" 2> "$work/server.log" &
    server_pid=$!
    # (ws has stopped its servers itself: a failed kill is no failure.)
    trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
    base=
    for _ in $(seq 600); do
        base=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/server.log")
        [ -n "$base" ] && break
        sleep 0.1
    done
    [ -n "$base" ] || { cat "$work/server.log" >&2; exit 1; }
    grep '^loaded' "$work/server.log"
}

case "${1:-engine}" in
engine)
    BENCH_PEOPLE=$data BENCH_QUERIES=$kit/queries.jsonl cargo bench -p people-http --bench queries -- "${@:2}"
    ;;
live)
    BENCH_PEOPLE=$data BENCH_QUERIES=$kit/queries.jsonl cargo bench -p people-http --bench live -- "${@:2}"
    ;;
writes)
    command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
    start_server
    python3 scripts/wrk_paths.py "$kit/queries.jsonl" > "$work/paths.txt"
    python3 scripts/bench_writes.py --base "$base" --paths "$work/paths.txt" \
        --duration "${DURATION:-20}"
    grep VmRSS "/proc/$server_pid/status"
    ;;
http)
    start_server
    python3 scripts/bench_http.py --base "$base" --queries "$kit/queries.jsonl" --rounds "${ROUNDS:-20}"
    ;;
load)
    command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
    start_server
    python3 scripts/wrk_paths.py "$kit/queries.jsonl" > "$work/paths.txt"
    WRK_PATHS=$work/paths.txt wrk -t2 -c64 -d"${DURATION:-30s}" --latency \
        -s scripts/wrk_mix.lua "$base"
    grep VmRSS "/proc/$server_pid/status"
    ;;
jobs)
    start_server
    python3 scripts/bench_jobs.py --base "$base" --runs "${RUNS:-20}"
    ;;
ws)
    cargo build --release --quiet -p local --example ws_bench
    clients=${CLIENTS:-10000}
    if [ "$(ulimit -n)" -lt $((clients + 1000)) ]; then
        ulimit -n $((clients + 1000)) 2>/dev/null || {
            echo "bench: $clients clients need $((clients + 1000)) open files; ulimit -n is $(ulimit -n)" >&2
            exit 1
        }
    fi
    for notifier in in-process management-api; do
        echo "== pushes $notifier"
        if [ $notifier = in-process ]; then
            start_server --people 100000
        else
            # The Management API this same server serves, through the AWS SDK
            # client production uses (the port is known once it listens, so
            # bind a free one first).
            port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
                WEBSOCKET_ENDPOINT=http://127.0.0.1:$port PORT=$port start_server --people 100000
        fi
        "$target_dir/release/examples/ws_bench" --url "ws://${base#http://}/ws" --clients "$clients" \
            --jobs "${JOBS:-3000}" --rate "${RATE:-200}" --server-pid "$server_pid"
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: scripts/bench.sh engine|http|load|jobs|ws" >&2
    exit 2
    ;;
esac
