#!/usr/bin/env bash
# The shipped function binaries, run together on this machine:
#   scripts/dev.sh [--port N] [--watch]        (port: default 3000)
#
# One moto server (DynamoDB, SQS, S3) with the tables, queues and index-image
# bucket created as template.yaml declares them (`admin create-tables`,
# `admin create-queues`, `admin create-bucket`);
# the functions running against it under cargo lambda; and the local
# server in front of them on
# 127.0.0.1:N (`local --functions`): the HTTP API, the WebSocket API at /ws,
# the Management API the functions push through, the SQS event source
# that hands the jobs queue to the processor function, and the schedules
# (EventBridge's) that run the sweeper and the index writer, here every
# minute.
#
# By default the workspace's binaries (`cargo build --workspace --bins`,
# the build the tests use) run under cargo lambda's runtime API (`cargo
# lambda watch --only-lambda-apis`): it starts in seconds, and a code
# change needs a restart. --watch: `cargo lambda watch` builds and runs the
# functions itself and rebuilds them on change, the next request running
# the new code; its first request to each function compiles that function
# with its own feature set (minutes per function the first time).
#
# Prints where everything listens; Ctrl-C or SIGTERM stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
. scripts/lib/target-dir.sh

port=3000
prebuilt=1
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="${2:?--port needs a number}"; shift 2 ;;
        --port=*) port="${1#--port=}"; shift ;;
        --watch) prebuilt=0; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "dev.sh: unknown argument $1 (usage: scripts/dev.sh [--port N] [--watch])" >&2; exit 2 ;;
    esac
done
case "$port" in ''|*[!0-9]*) echo "dev.sh: --port takes a number, not $port" >&2; exit 2 ;; esac

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # URL WHAT PID
    local i
    for i in $(seq 1 300); do
        if curl -s -o /dev/null -m 2 "$1"; then return 0; fi
        if ! kill -0 "$3" 2>/dev/null; then echo "dev.sh: $2 exited; see $logs" >&2; return 1; fi
        sleep 0.2
    done
    echo "dev.sh: $2 did not answer at $1 within 60 s; see $logs" >&2
    return 1
}

pids=()
logs="$(mktemp -d "${TMPDIR:-/tmp}/people-dev.XXXXXX")"
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping"
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "stopped (logs in $logs)"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== tools (.venv: moto, cargo-lambda, zig)"
scripts/python-tools.sh
bin=$(cargo_target_dir)/debug
functions=(query-api enqueue processor websocket sweeper index-writer)
if [ "$prebuilt" = 1 ]; then
    echo "== building the workspace's binaries"
    cargo build --quiet --workspace --bins
else
    echo "== building admin and the local server"
    cargo build --quiet -p admin -p local
fi

moto_port="$(free_port)"
lambda_port="$(free_port)"
moto="http://127.0.0.1:$moto_port"
lambda="http://127.0.0.1:$lambda_port"
export AWS_ENDPOINT_URL="$moto" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
    AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

echo "== moto (DynamoDB, SQS, S3) on $moto"
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$logs/moto.log" 2>&1 &
pids+=($!)
wait_for "$moto/moto-api/" moto "${pids[-1]}"

echo "== tables, queues and the index-image bucket, as template.yaml declares them"
"$bin/admin" create-tables
"$bin/admin" create-bucket --name index | grep -v '^INDEX_BUCKET='
queues="$("$bin/admin" create-queues --name jobs)"
echo "$queues" | grep -v '^QUEUE_URL='
queue_url="$(echo "$queues" | sed -n 's/^QUEUE_URL=//p')"

# Every function's environment: the template's, with moto and this server
# standing in for AWS. (Under --watch, cargo lambda adds each function's
# own from [workspace.metadata.lambda] in Cargo.toml, and that wins over
# these: so it sets nothing that these set differently.)
env_vars="STORAGE_TYPE=dynamodb,QUEUE_TYPE=sqs,QUEUE_URL=$queue_url,MAX_RECEIVES=3"
env_vars+=",PEOPLE_TABLE=people,REQUESTS_TABLE=requests,CONNECTIONS_TABLE=connections"
env_vars+=",WEBSOCKET_ENDPOINT=http://127.0.0.1:$port,INDEX_REFRESH_MS=1000,INDEX_BUCKET=index"
env_vars+=",AWS_ENDPOINT_URL=$moto,AWS_REGION=us-east-1,AWS_ACCESS_KEY_ID=test"
env_vars+=",AWS_SECRET_ACCESS_KEY=test,AWS_EC2_METADATA_DISABLED=true"
# moto serves about 1 ms an item: a Scan page of DynamoDB's 1 MB (about
# 6,000 people) would pass the SDK's 3 s attempt timeout.
env_vars+=",SCAN_PAGE_ITEMS=200"
# Nobody signs in locally: anonymous writes are on, as on the local server.
env_vars+=",ALLOW_ANONYMOUS_WRITES=true"

if [ "$prebuilt" = 1 ]; then
    echo "== cargo lambda's runtime API on $lambda, the prebuilt functions under it"
    .venv/bin/cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$lambda_port" \
        >"$logs/functions.log" 2>&1 &
else
    echo "== cargo lambda watch (the functions, rebuilt on change) on $lambda"
    .venv/bin/cargo-lambda lambda watch -A 127.0.0.1 -P "$lambda_port" --env-var "$env_vars" \
        >"$logs/functions.log" 2>&1 &
fi
pids+=($!)
for i in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$lambda_port") 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "dev.sh: cargo lambda watch exited; see $logs/functions.log" >&2; exit 1; }
    sleep 0.2
done
if [ "$prebuilt" = 1 ]; then
    for f in "${functions[@]}"; do
        # The same variables as under watch, one per line for env(1).
        env $(echo "$env_vars" | tr ',' ' ') AWS_LAMBDA_RUNTIME_API="$lambda/.rt/$f" \
            AWS_LAMBDA_FUNCTION_NAME="$f" AWS_LAMBDA_FUNCTION_VERSION=1 \
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 "$bin/$f" >"$logs/$f.log" 2>&1 &
        pids+=($!)
        echo "  $f (pid ${pids[-1]})"
    done
fi

echo "== the local server in front of them on http://127.0.0.1:$port"
QUEUE_URL="$queue_url" "$bin/local" --functions "$lambda" --port "$port" --schedule-every 60 \
    2>"$logs/local.log" &
pids+=($!)
wait_for "http://127.0.0.1:$port/metrics" "the local server" "${pids[-1]}"

# The first request to each function builds it (cargo) and starts it; the
# query function then builds its search index from the people table.
echo "== building and starting the functions, and the search index (first request to each)"
if [ "$prebuilt" = 1 ]; then index_log="$logs/query-api.log"; else index_log="$logs/functions.log"; fi
# GET PATH, showing the query function's progress lines (the Scan of the
# people table, once a second, then "search index built") while it waits.
first_request() {
    local path=$1 seen=0 n request
    printf '  GET %s\n' "$path"
    curl -s -o "$logs/first.body" -m 600 -w '%{http_code}' "http://127.0.0.1:$port$path" \
        >"$logs/first.code" 2>/dev/null &
    request=$!
    while kill -0 "$request" 2>/dev/null; do
        n=$(grep -c 'search index' "$index_log" 2>/dev/null || true)
        if [ "${n:-0}" -gt "$seen" ]; then
            grep 'search index' "$index_log" | tail -n "+$((seen + 1))" | head -n "$((n - seen))" |
                sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    /' | cut -c1-160
            seen=$n
        fi
        sleep 0.5
    done
    wait "$request" || true
    echo "    -> $(cat "$logs/first.code" 2>/dev/null || echo 'no answer') after $((SECONDS - started)) s"
}
started=$SECONDS
for path in /filters "/requests/none"; do first_request "$path"; done

cat <<EOF

Ready. Everything listens on 127.0.0.1:
  HTTP API          http://127.0.0.1:$port/people?search=jo   (POST /requests, GET /requests/{id}, /filters)
  WebSocket API     ws://127.0.0.1:$port/ws
  Management API    http://127.0.0.1:$port/@connections/{id}   (the functions' WEBSOCKET_ENDPOINT)
  Lambda invoke API $lambda   (cargo lambda watch: cargo lambda invoke --invoke-port $lambda_port ...)
  moto              $moto   (DynamoDB tables people, requests, connections; SQS jobs, jobs-dlq; S3 index)
  schedules         sweeper and index-writer every 60 s (the template's rate(5 minutes), sped up)
  jobs queue        $queue_url
  logs              $logs
Load people:  AWS_ENDPOINT_URL=$moto AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test $bin/admin import FILE
Ctrl-C stops everything.
EOF
wait -n "${pids[@]}" || true
echo "dev.sh: a process ended on its own; see $logs" >&2
exit 1
