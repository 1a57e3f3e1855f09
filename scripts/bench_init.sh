#!/usr/bin/env bash
# Cold start of each of the seven functions under cargo lambda's runtime API,
# on moto (DynamoDB, SQS, S3, the Management API), one build or several side
# by side:
#   scripts/bench_init.sh [RUNS] [LABEL=BIN_DIR ...]
#       (defaults: 10 runs; one build, this tree's release binaries; each
#       BIN_DIR holds the seven functions and admin)
#
# One moto server on 127.0.0.1 with the template's tables, queue and bucket
# (`admin create-tables`, `create-queues`, `create-bucket`; the people table
# is empty), and `cargo lambda watch --only-lambda-apis`. Each run starts
# every function's binary as the runtime API's function and invokes it at
# once with its fixture from events/: the time from starting the process to
# the answer is its init (SDK configuration and clients, the index of an
# empty table) and its first invocation. Several LABEL=BIN_DIR (for example
# the release binaries of two commits) are run alternately, so they share
# the machine's noise; the table gives each function's median and the ratio
# of the first build's to the others'. See scripts/bench_init.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
. scripts/lib/target-dir.sh
target_dir=$(cargo_target_dir)
runs=${1:-10}
shift || true
functions=(query-api enqueue processor websocket authorizer sweeper index-writer)
if [ $# -eq 0 ]; then
    for f in "${functions[@]}"; do cargo build --release --quiet -p "$f" --bins; done
    cargo build --release --quiet -p admin
    set -- "release=$target_dir/release"
fi
# The tables, queue and bucket are made by the first build's admin.
admin=${1#*=}/admin
scripts/python-tools.sh
work="$(mktemp -d "${TMPDIR:-/tmp}/people-init.XXXXXX")"
. scripts/lib/moto-lambda.sh
start_moto
"$admin" create-tables >/dev/null
"$admin" create-bucket --name index >/dev/null
QUEUE_URL="$("$admin" create-queues --name jobs | sed -n 's/^QUEUE_URL=//p')"
export QUEUE_URL
start_runtime_api
for build in "$@"; do
    dir=${build#*=}
    echo "${build%%=*}: $(for f in "${functions[@]}"; do printf '%s %s; ' "$f" "$(stat -c %s "$dir/$f")"; done)bytes"
done
RUNTIME_API="127.0.0.1:$lambda_port" INIT_LOG="$work/functions.log" python3 scripts/bench_init.py "$runs" "$@"
echo "logs in $work"
