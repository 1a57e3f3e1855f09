#!/usr/bin/env bash
# Cold start of the query function under cargo lambda's runtime API, from
# an index image and from a Scan:
#   scripts/bench_coldstart.sh [COUNT] [RUNS] [IMAGE_PEOPLE]
#       (defaults: 20000 people in the table, 3 runs of each, a 1000000-person image)
#
# One moto server (DynamoDB, S3) on 127.0.0.1 with the template's tables and
# bucket, and cargo lambda's runtime API (`cargo lambda watch
# --only-lambda-apis`). Each run starts the release query-api binary under
# it and at once sends `events/query-people-search.json` through the invoke
# API: the time from starting the process to the answer is the cold start
# (SDK set-up, the index, the first request).
#
# A. The same table both ways: COUNT people of the kit's generator (seed
#    42) imported with `admin import`; RUNS runs with no INDEX_BUCKET (the
#    parallel Scan); the index-writer function writes an image; RUNS runs
#    with INDEX_BUCKET (the image, then the feed from its position). moto
#    serves a 1 MB Scan page slower than the SDK's 3 s attempt timeout
#    (about 1 ms an item, four segments at once), so the functions run with SCAN_PAGE_ITEMS=200
#    (override it in the environment); the Scan figures are moto's.
# B. A large image: IMAGE_PEOPLE generated people written as an image
#    (`cargo bench --bench image -- write`), uploaded to a bucket of its own
#    (`-- s3`), and RUNS runs of a query function over an empty table with
#    that bucket: the start-to-answer of an image of that size, with
#    nothing to catch up. 0 skips it.
#
# Prints each run and the medians. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
. scripts/lib/target-dir.sh
target_dir=$(cargo_target_dir)
count=${1:-20000}
runs=${2:-3}
image_people=${3:-1000000}
kit=$(cd ../shared/bench && pwd)
data=$target_dir/bench-data/people-$count.jsonl
mkdir -p "$target_dir/bench-data"
if [ ! -s "$data" ]; then
    echo "generating $data"
    python3 "$kit/gen_people.py" --count "$count" --seed 42 >"$data.tmp" && mv "$data.tmp" "$data"
fi
scripts/python-tools.sh
cargo build --release --quiet --bin admin --bin query-api --bin index-writer
if [ "$image_people" != 0 ]; then
    image_file=$target_dir/bench-data/image-$image_people.img
    if [ ! -s "$image_file" ]; then
        (cargo bench --quiet --profile release -p people-aws --bench image -- write "$image_people" "$image_file")
    fi
fi
bin=$target_dir/release
work="$(mktemp -d "${TMPDIR:-/tmp}/people-coldstart.XXXXXX")"
. scripts/lib/moto-lambda.sh
start_moto
"$bin/admin" create-tables >/dev/null
PEOPLE_TABLE=people-empty "$bin/admin" create-tables >/dev/null
"$bin/admin" create-bucket --name index >/dev/null
echo "== importing $count people into moto's DynamoDB"
start=$SECONDS
"$bin/admin" import "$data" 2>"$work/import.log" | tail -n 2
echo "   ($((SECONDS - start)) s)"
start_runtime_api

# run NAME BINARY EVENT [VAR=VALUE...]: starts BINARY under the runtime API,
# invokes it with EVENT at once, prints the seconds from start to answer.
run() {
    local name=$1 binary=$2 event=$3 t0 t1 pid
    shift 3
    t0=$(date +%s.%N)
    env STORAGE_TYPE=dynamodb PEOPLE_TABLE=people SCAN_PAGE_ITEMS="${SCAN_PAGE_ITEMS:-200}" "$@" RUST_LOG=info \
        AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$lambda_port/.rt/$binary" \
        AWS_LAMBDA_FUNCTION_NAME="$binary" AWS_LAMBDA_FUNCTION_VERSION=1 \
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769 "$bin/$binary" >"$work/$name.log" 2>&1 &
    pid=$!
    curl -s -m 1800 -o "$work/$name.answer" -X POST --data-binary "@$event" \
        "http://127.0.0.1:$lambda_port/2015-03-31/functions/$binary/invocations" &
    local request=$!
    # A function whose init fails exits, and its invocation is never answered.
    while kill -0 "$request" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            kill "$request" 2>/dev/null || true
            echo "$name: the function exited before answering:" >&2
            tail -n 3 "$work/$name.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    wait "$request" || true
    t1=$(date +%s.%N)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    python3 -c "print(f'{$t1 - $t0:.2f}')"
}
summary() { # NAME: the index line of its log, colours removed
    sed -e 's/\x1b\[[0-9;]*m//g' "$work/$1.log" | grep -E 'search index built|index image read|Scan' | cut -c1-200 | sed 's/^/      /'
}
median() { python3 -c 'import statistics, sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }

scan=()
for i in $(seq "$runs"); do
    s=$(run "scan-$i" query-api events/query-people-search.json)
    echo "   scan  run $i: ${s} s to the first answer ($(grep -o 'total[^0-9]*[0-9]*' "$work/scan-$i.answer"))"
    summary "scan-$i"
    scan+=("$s")
done
echo "== the index writer writes an image"
run writer index-writer events/scheduled-index-writer.json INDEX_BUCKET=index >/dev/null
cat "$work/writer.answer"; echo
image=()
for i in $(seq "$runs"); do
    s=$(run "image-$i" query-api events/query-people-search.json INDEX_BUCKET=index)
    echo "   image run $i: ${s} s to the first answer ($(grep -o 'total[^0-9]*[0-9]*' "$work/image-$i.answer"))"
    summary "image-$i"
    image+=("$s")
done
ms=$(median "${scan[@]}")
mi=$(median "${image[@]}")
echo "A. median from start to first answer, $count people: Scan $ms s, image $mi s ($(python3 -c "print(f'{$ms / $mi:.1f}')")x)"
if [ "$image_people" != 0 ]; then
    echo "== B. an image of $image_people people, uploaded to its own bucket"
    (cargo bench --quiet --profile release -p people-aws --bench image -- s3 "$image_file" "$AWS_ENDPOINT_URL") | sed 's/^/   /'
    big=()
    for i in $(seq "$runs"); do
        s=$(run "big-$i" query-api events/query-people-search.json INDEX_BUCKET=bench-images PEOPLE_TABLE=people-empty)
        echo "   image of $image_people run $i: ${s} s to the first answer ($(grep -o 'total[^0-9]*[0-9]*' "$work/big-$i.answer"))"
        summary "big-$i"
        big+=("$s")
    done
    echo "B. median from start to first answer with an image of $image_people people: $(median "${big[@]}") s"
fi
echo "logs in $work"
