#!/usr/bin/env bash
# Fuzzes the parsers that take untrusted input, one target after another.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default: 600 seconds for every target of fuzz/Cargo.toml. Each target runs
# from a scratch copy of its seed corpus (fuzz/corpus/<target>/, committed)
# in fuzz/target/scratch-corpus/<target>/, so what the fuzzer adds is never
# committed; crashes, leaks, OOMs and timeouts are written to
# fuzz/artifacts/<target>/ (minimize one with `cargo fuzz tmin`, then add it
# to the seeds as regression-<short>). Prints per target the executions,
# coverage and libFuzzer's final line; exits non-zero if any target failed.
#
# FUZZ_KEEP_GOING=1 runs libFuzzer in fork mode (-fork=1) and goes on past
# crashes, OOMs and timeouts for the whole time, collecting every finding
# (for a target with a known, still open bug).
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer=address); on a stable
# toolchain RUSTC_BOOTSTRAP=1 allows them. One fuzzer at a time, niced: it
# uses one core.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

seconds=600
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list)
fi

# Longest input per target: past each size limit the code checks, so the
# checks themselves are exercised.
max_len() {
    case $1 in
        query_params) echo 20000 ;;    # MAX_QUERY_BYTES is 16 KiB
        cursor) echo 8192 ;;           # MAX_TOKEN is 2048, plus filter and person lines
        request_body) echo 300000 ;;   # MAX_BODY_BYTES is 256 KiB
        ws_frame) echo 300000 ;;       # MAX_MESSAGE_BYTES is 128 KiB
        sqs_message) echo 262144 ;;    # an SQS message carries 256 KiB
        import_line) echo 16384 ;;     # the longest valid line is under 6 KB
        *) echo 65536 ;;
    esac
}

dict() {
    case $1 in
        query_params) echo dict/query.dict ;;
        cursor) echo dict/cursor.dict ;;
        *) echo dict/json.dict ;;
    esac
}

keep_going=()
if [[ ${FUZZ_KEEP_GOING:-0} == 1 ]]; then
    keep_going=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
fi

# One run at a time: two would share the scratch corpora and logs below,
# and on a 2-core machine they would also starve everything else.
mkdir -p target/logs
exec 9>target/fuzz.lock
if ! flock -n 9; then
    echo "== another scripts/fuzz.sh is running; waiting for it to finish"
    flock 9
fi

echo "== building ${targets[*]}"
nice -n 10 cargo fuzz build

failed=()
for target in "${targets[@]}"; do
    scratch=target/scratch-corpus/$target
    log=target/logs/$target.log
    rm -rf "$scratch"
    mkdir -p "$scratch" "artifacts/$target"
    cp -R "corpus/$target/." "$scratch/"
    touch "$log.start"
    echo "== $target: ${seconds}s from $(find "$scratch" -type f | wc -l) seeds (log: fuzz/$log)"
    status=0
    nice -n 10 cargo fuzz run "$target" "$scratch" -- \
        -max_total_time="$seconds" \
        -rss_limit_mb=2048 \
        -max_len="$(max_len "$target")" \
        -timeout=20 \
        -dict="$(dict "$target")" \
        -print_final_stats=1 \
        "${keep_going[@]}" \
        >"$log" 2>&1 || status=$?
    # The last status line: "#RUNS ... cov: N ft: N corp: N/SIZE ... rss: NMb".
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    echo "corpus reached: $(find "$scratch" -type f | wc -l) files"
    # libFuzzer's last word: "Done N runs in S second(s)", "INFO: exiting: 0
    # time: S" (fork mode) or the SUMMARY of a crash.
    echo "final: $(grep -E '^Done [0-9]+ runs|^INFO: exiting|^SUMMARY: ' "$log" | tail -n 1)"
    findings=$(find "artifacts/$target" -type f -newer "$log.start" | wc -l)
    if [[ $status -ne 0 || $findings -ne 0 ]]; then
        echo "!! $target failed (exit $status, $findings new artifacts in fuzz/artifacts/$target):"
        find "artifacts/$target" -type f -newer "$log.start"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | sed -E 's/ \([0-9]+\)//' | sort | uniq -c | head -n 10 || true
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s without a finding"
