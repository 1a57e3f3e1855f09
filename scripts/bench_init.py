"""Cold start of every function under cargo lambda's runtime API.

Run by scripts/bench_init.sh, which starts moto and `cargo lambda watch
--only-lambda-apis` and passes their addresses in the environment
(RUNTIME_API, AWS_ENDPOINT_URL, QUEUE_URL).

    bench_init.py RUNS LABEL=BIN_DIR [LABEL=BIN_DIR ...]

For each run, each build (LABEL) and each function, in that order (so the
builds alternate and share the machine's noise): starts BIN_DIR/FUNCTION
as the runtime API's function, sends the function's fixture from events/
through the invoke API at once, and takes the time from starting the
process to the answer: the function's init (SDK configuration, clients,
the index) and its first invocation. Prints every function's median per
build and the ratio of the first build's median to each other's.
"""

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

# The function, the fixture it is invoked with, and what it needs besides
# the common environment below.
FUNCTIONS = [
    ("query-api", "events/query-people-search.json", {}),
    ("enqueue", "events/enqueue-report.json", {"ALLOW_ANONYMOUS_WRITES": "true"}),
    ("processor", "events/sqs-report.json", {}),
    ("websocket", "events/ws-connect.json", {"ALLOW_ANONYMOUS_WRITES": "true"}),
    (
        "authorizer",
        "events/ws-authorize.json",
        # A loopback issuer where nothing listens: the key fetch fails at
        # once and the answer is a Deny, with no call off this machine.
        {"JWT_ISSUER": "http://127.0.0.1:9/", "JWT_AUDIENCE": "people-directory"},
    ),
    ("sweeper", "events/scheduled.json", {}),
    ("index-writer", "events/scheduled-index-writer.json", {"INDEX_BUCKET": "index"}),
]


def environment(function, extra):
    """The deployed configuration, on moto: DynamoDB tables, SQS, the
    Management API; only the endpoint differs from AWS."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED")
    }
    env.update(
        STORAGE_TYPE="dynamodb",
        QUEUE_TYPE="sqs",
        QUEUE_URL=os.environ["QUEUE_URL"],
        PEOPLE_TABLE="people",
        REQUESTS_TABLE="requests",
        CONNECTIONS_TABLE="connections",
        WEBSOCKET_ENDPOINT=os.environ["AWS_ENDPOINT_URL"],
        RUST_LOG="warn",
        AWS_LAMBDA_RUNTIME_API=f"http://{os.environ['RUNTIME_API']}/.rt/{function}",
        AWS_LAMBDA_FUNCTION_NAME=function,
        AWS_LAMBDA_FUNCTION_VERSION="1",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1769",
    )
    env.update(extra)
    return env


def cold_start(binary, function, fixture, extra, log):
    """Seconds from starting the process to the first answer."""
    body = open(fixture, "rb").read()
    url = f"http://{os.environ['RUNTIME_API']}/2015-03-31/functions/{function}/invocations"
    t0 = time.perf_counter()
    process = subprocess.Popen([binary], env=environment(function, extra), stdout=log, stderr=log)
    try:
        request = urllib.request.Request(url, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=120) as answer:
            text = answer.read()
        elapsed = time.perf_counter() - t0
        if process.poll() is not None:
            raise SystemExit(f"{binary} exited ({process.returncode}) before answering")
        json.loads(text)  # an answer, not an error page of the emulator
        return elapsed
    finally:
        process.kill()
        process.wait()


def main():
    runs = int(sys.argv[1])
    builds = [arg.split("=", 1) for arg in sys.argv[2:]]
    times = {(label, f[0]): [] for label, _ in builds for f in FUNCTIONS}
    log = open(os.environ.get("INIT_LOG", os.devnull), "ab")
    for run in range(runs):
        for label, directory in builds:
            for function, fixture, extra in FUNCTIONS:
                s = cold_start(os.path.join(directory, function), function, fixture, extra, log)
                times[(label, function)].append(s)
        print(f"run {run + 1} of {runs} done", file=sys.stderr)
    labels = [label for label, _ in builds]
    head = " | ".join(f"{label} median ms" for label in labels)
    ratios = " | ".join(f"{labels[0]} / {label}" for label in labels[1:])
    print(f"| function | {head} |" + (f" {ratios} |" if ratios else ""))
    print("| --- " * (1 + len(labels) + len(labels[1:])) + "|")
    for function, _, _ in FUNCTIONS:
        medians = [statistics.median(times[(label, function)]) * 1000 for label in labels]
        row = " | ".join(f"{m:.1f}" for m in medians)
        extra = " | ".join(f"{medians[0] / m:.2f}" for m in medians[1:])
        print(f"| {function} | {row} |" + (f" {extra} |" if extra else ""))


if __name__ == "__main__":
    main()
