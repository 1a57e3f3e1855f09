#!/usr/bin/env bash
# Search benchmarks on the kit's 1M-person data set (seed 42):
#   scripts/bench.sh engine     criterion + latency percentiles of the index (no HTTP)
#   scripts/bench.sh http       the kit's sequential one-connection benchmark, over HTTP
#   scripts/bench.sh load       wrk, 64 connections, the query mix, against the local server
#   scripts/bench.sh jobs       report latency (POST to completed) and import throughput through jobs
# The data file is made once under target/bench-data.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=$(cd ../shared/bench && pwd)
count=${BENCH_COUNT:-1000000}
data=$PWD/target/bench-data/people-$count.jsonl
mkdir -p target/bench-data
if [ ! -s "$data" ]; then
    echo "generating $data"
    python3 "$kit/gen_people.py" --count "$count" --seed 42 > "$data.tmp" && mv "$data.tmp" "$data"
fi

start_server() {
    cargo build --release --quiet --bin local
    target/release/local --port 0 --data "$data" 2> target/bench-data/server.log &
    server_pid=$!
    trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null' EXIT
    base=
    for _ in $(seq 600); do
        base=$(sed -n 's/^listening on //p' target/bench-data/server.log)
        [ -n "$base" ] && break
        sleep 0.1
    done
    [ -n "$base" ] || { cat target/bench-data/server.log >&2; exit 1; }
    grep '^loaded' target/bench-data/server.log
}

case "${1:-engine}" in
engine)
    BENCH_PEOPLE=$data BENCH_QUERIES=$kit/queries.jsonl cargo bench -p shared --bench queries -- "${@:2}"
    ;;
http)
    start_server
    python3 scripts/bench_http.py --base "$base" --queries "$kit/queries.jsonl" --rounds "${ROUNDS:-20}"
    ;;
load)
    command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
    start_server
    python3 scripts/wrk_paths.py "$kit/queries.jsonl" > target/bench-data/paths.txt
    WRK_PATHS=target/bench-data/paths.txt wrk -t2 -c64 -d"${DURATION:-30s}" --latency \
        -s scripts/wrk_mix.lua "$base"
    grep VmRSS "/proc/$server_pid/status"
    ;;
jobs)
    start_server
    python3 scripts/bench_jobs.py --base "$base" --runs "${RUNS:-20}"
    ;;
*)
    echo "usage: scripts/bench.sh engine|http|load|jobs" >&2
    exit 2
    ;;
esac
