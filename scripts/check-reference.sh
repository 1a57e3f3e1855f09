#!/usr/bin/env bash
# Differential check of the search API against the reference semantics:
# generates N people with the kit's generator, answers the kit's queries
# with its oracle, runs the same queries against the local server over HTTP,
# and compares totals and page ids.
#
#   scripts/check-reference.sh [N] [QUERIES]      (default 100000, the kit's queries.jsonl)
#
# Needs the kit at ../shared (beside this repository) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/target-dir.sh
count=${1:-100000}
kit=../shared/bench
queries=${2:-$kit/queries.jsonl}
[ -f "$kit/gen_people.py" ] || { echo "check-reference: the kit is missing at $kit" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

python3 "$kit/gen_people.py" --count "$count" --seed 42 > "$work/people.jsonl"
python3 "$kit/oracle.py" --data "$work/people.jsonl" --queries "$queries" > "$work/expected.jsonl"

# A debug build loads 100k people in seconds; larger sets want the release build.
if [ "$count" -gt 200000 ]; then profile=release; else profile=debug; fi
cargo build --quiet --bin local $([ $profile = release ] && echo --release)
local_bin=$(cargo_target_dir)/$profile/local
"$local_bin" --port 0 --data "$work/people.jsonl" 2> "$work/server.log" &
server_pid=$!
base=
for _ in $(seq 3000); do
    base=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$work/server.log")
    [ -n "$base" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { echo "check-reference: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

python3 scripts/run_queries.py --base "$base" --queries "$queries" > "$work/actual.jsonl"
echo "reference check on $count people:"
python3 "$kit/compare.py" "$work/expected.jsonl" "$work/actual.jsonl" | sed 's/^/  /'
