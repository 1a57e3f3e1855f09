# Sourced, not run: `. scripts/lib/moto-lambda.sh` from the repository root,
# after `scripts/python-tools.sh` (the moto server and cargo lambda come from
# the project's .venv).
#
# What the cold-start benchmarks share: a moto server and cargo lambda's
# runtime API (`cargo lambda watch --only-lambda-apis`), each on a free
# port of 127.0.0.1, logging into "$work", and stopped when the script
# exits (every process started here goes into `pids`, which the EXIT trap
# ends).
#
#   work=$(mktemp -d ...)
#   start_moto            # exports AWS_ENDPOINT_URL and test credentials
#   start_runtime_api     # sets lambda_port

pids=()
stop_started() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_started EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A moto server, and the environment that points the SDKs (and admin) at it.
start_moto() {
    local port
    port=$(free_port)
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
        AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
    unset AWS_PROFILE AWS_SESSION_TOKEN
    .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -s -o /dev/null -m 2 "$AWS_ENDPOINT_URL/moto-api/" && return; sleep 0.2; done
    echo "moto did not start: $work/moto.log" >&2
    return 1
}

# cargo lambda's runtime API alone: functions are started by hand against
# http://127.0.0.1:$lambda_port/.rt/NAME and invoked through its
# /2015-03-31/functions/NAME/invocations.
start_runtime_api() {
    lambda_port=$(free_port)
    .venv/bin/cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$lambda_port" \
        >"$work/cargo-lambda.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$lambda_port") 2>/dev/null && return
        sleep 0.2
    done
    echo "cargo lambda did not start: $work/cargo-lambda.log" >&2
    return 1
}
