#!/usr/bin/env bash
# `sam local` on this machine, with no image pulled from anywhere:
#   scripts/sam-local.sh [--keep]
#
# 1. Docker: installs docker.io (Debian's package) if there is no dockerd,
#    and starts a daemon of its own (own socket, data and exec roots under
#    a temporary directory; --iptables=false, as this sandbox has no
#    iptables; the default bridge and docker-proxy publish the ports) unless
#    DOCKER_HOST already points at one that answers.
# 2. The emulation base image, `people-lambda-base:local`, imported from a
#    root file system made here: busybox (Debian's busybox-static) for
#    /bin/sh, this machine's glibc, libm and libgcc_s, the only
#    libraries the function binaries link (see `ldd`), and its CA bundle
#    (the AWS SDK loads the system's roots at start). SAM adds its own
#    Lambda runtime interface emulator (aws-lambda-rie, shipped in the SAM
#    CLI package) on top. What differs from Amazon Linux 2023
#    (provided.al2023): no dnf/rpm, no OpenSSL or other system libraries, the machine's glibc version instead of AL2023's, and
#    x86_64, the machine's architecture.
# 3. The architecture: the template says arm64. Locally the functions run
#    as x86_64 builds (no qemu-user binfmt needed): a generated template
#    (sam-local/template.yaml in cargo's target directory) points each
#    function's CodeUri at the x86_64 binary the tests already built
#    (debug/<binary> there, as `bootstrap`) and sets Architectures to
#    x86_64. template.yaml itself is not changed.
# 4. `sam local invoke` on every fixture in events/ (compared with what
#    the same binary answers under `cargo lambda invoke`), `sam local
#    start-api` answering the query routes, and `sam local start-lambda`
#    with the local server's front mode (`local --functions ... --function-names
#    logical-id`) answering HTTP requests through it.
# 5. Stops what it started (by PID): the SAM servers, the local server,
#    the containers of this run, and the daemon if it started it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
. scripts/lib/target-dir.sh
keep=0
[ "${1:-}" = "--keep" ] && keep=1

target_dir=$(cargo_target_dir)
bin=$target_dir/debug
work=$target_dir/sam-local
rm -rf "$work"
mkdir -p "$work"
pids=()
dockerd_pid=""
stop() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${DOCKER_HOST:-}" ] && command -v docker >/dev/null; then
        # The containers SAM started for this run's image.
        docker ps -q --filter "ancestor=people-lambda-base:local" 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
    fi
    if [ -n "$dockerd_pid" ] && [ "$keep" = 0 ]; then
        kill "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/python-tools.sh
sam=.venv/bin/sam

echo "== docker"
if ! command -v dockerd >/dev/null || [ ! -x /usr/bin/docker ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! [ -x /bin/busybox ] || ! /bin/busybox --list >/dev/null 2>&1 || ! file -L /bin/busybox 2>/dev/null | grep -q static; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
docker=/usr/bin/docker
if [ -z "${DOCKER_HOST:-}" ] || ! $docker info >/dev/null 2>&1; then
    root="$(mktemp -d "${TMPDIR:-/tmp}/people-docker.XXXXXX")"
    export DOCKER_HOST="unix://$root/docker.sock"
    dockerd --iptables=false --ip6tables=false --storage-driver=vfs \
        -H "$DOCKER_HOST" --data-root "$root/data" --exec-root "$root/exec" \
        --pidfile "$root/dockerd.pid" >"$root/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for i in $(seq 1 100); do
        $docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || { cat "$root/dockerd.log" >&2; exit 1; }
        sleep 0.3
    done
    echo "  started dockerd (pid $dockerd_pid) on $DOCKER_HOST"
fi
# SAM's docker client reads DOCKER_HOST too.

echo "== the base image people-lambda-base:local (no pull)"
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,lib64,lib/x86_64-linux-gnu,tmp,var/task,var/runtime,etc/ssl/certs}
cp /bin/busybox "$rootfs/bin/busybox"
for tool in sh ls cat env sleep; do ln -sf busybox "$rootfs/bin/$tool"; done
for lib in libc.so.6 libm.so.6 libgcc_s.so.1; do
    cp -L "/lib/x86_64-linux-gnu/$lib" "$rootfs/lib/x86_64-linux-gnu/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$rootfs/lib64/"
echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
# The AWS SDK's TLS client loads the system's roots at start, even for http.
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
tar -C "$rootfs" -cf "$work/rootfs.tar" .
# SAM layers its emulator on the base as people-lambda-base:rapid-<arch> and
# reuses that image if it exists: drop it, so the new base is used.
$docker images --format '{{.Repository}}:{{.Tag}}' people-lambda-base | xargs -r $docker rmi -f >/dev/null
$docker import "$work/rootfs.tar" people-lambda-base:local >/dev/null
echo "  $($docker image inspect people-lambda-base:local --format '{{.Size}}') bytes"

echo "== the function binaries (x86_64, as the tests build them)"
cargo build --quiet --workspace --bins
.venv/bin/python - "$work" "$bin" <<'EOF'
import re, shutil, sys, pathlib
work, built = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
text = pathlib.Path("template.yaml").read_text()
out, binary, current = [], None, None
for line in text.splitlines():
    m = re.match(r"\s+Binary: (\S+)", line)
    if m:
        binary = current = m.group(1)
    # (Metadata stays: sam local reads CodeUri, and builds nothing.)
    if re.match(r"\s+CodeUri: \.$", line) and binary:
        code = work / "functions" / binary
        code.mkdir(parents=True, exist_ok=True)
        shutil.copy(built / binary, code / "bootstrap")
        line = line.replace("CodeUri: .", f"CodeUri: {code}")
        binary = None
    line = line.replace("Architectures: [arm64]", "Architectures: [x86_64]")
    out.append(line)
    # sam local sets only the variables a function declares: the index
    # writer gets one for the endpoint of the moto server it runs against.
    if re.match(r"\s+INDEX_BUCKET: !Ref IndexBucket$", line) and current == "index-writer":
        out.append(line[: len(line) - len(line.lstrip())] + 'AWS_ENDPOINT_URL: ""')
(work / "template.yaml").write_text("\n".join(out) + "\n")
EOF
echo "== moto (DynamoDB, S3) for the index writer, with the template's people table"
moto_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
moto="http://127.0.0.1:$moto_port"
.venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
for i in $(seq 1 150); do curl -s -o /dev/null -m 2 "$moto/moto-api/" && break; sleep 0.2; done
# The credentials sam local hands the container, and admin's.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN
AWS_ENDPOINT_URL="$moto" "$bin/admin" create-tables >/dev/null
AWS_ENDPOINT_URL="$moto" "$bin/admin" create-bucket --name index-sam >/dev/null
AWS_ENDPOINT_URL="$moto" "$bin/admin" create-bucket --name index-cl >/dev/null
# A Lambda container is on Docker's bridge, where the host's 127.0.0.1 is
# not its own (and sam local ignores --docker-network host): a relay on the
# bridge's gateway address, reachable from this machine's containers only,
# passes its connections to moto on 127.0.0.1.
gateway="$($docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}')"
# A freshly started daemon may not report the bridge's gateway yet: the
# bridge interface's own address is the same one.
[ -n "$gateway" ] || gateway=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
[ -n "$gateway" ] || { echo "sam-local: no address for Docker's bridge (docker0)" >&2; exit 1; }
relay_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 - "$gateway" "$relay_port" "$moto_port" >"$work/relay.log" 2>&1 <<'RELAY' &
import asyncio, sys
host, port, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    finally:
        w.close()
async def serve(r, w):
    tr, tw = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(r, tw), pipe(tr, w), return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, host, port)
    async with server:
        await server.serve_forever()
asyncio.run(main())
RELAY
pids+=($!)
for i in $(seq 1 50); do (exec 3<>"/dev/tcp/$gateway/$relay_port") 2>/dev/null && break; sleep 0.1; done

template="$work/template.yaml"
common=(--template "$template" --invoke-image people-lambda-base:local --skip-pull-image)
envs="$work/env.json"
# The environment cargo lambda gives each function ([workspace.metadata.lambda]):
# memory storage and queue, so no AWS account is needed. (sam local applies
# only the variables the template declares for a function; the others, such
# as SEED_PEOPLE, keep the code's defaults, as under cargo lambda.)
.venv/bin/python - "$envs" "http://$gateway:$relay_port" index-sam <<'EOF'
import json, sys, tomllib
meta = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["metadata"]["lambda"]["bin"]
names = {"query-api": "QueryApiFunction", "enqueue": "EnqueueFunction", "processor": "ProcessorFunction",
         "websocket": "WebSocketFunction", "authorizer": "AuthorizerFunction", "sweeper": "SweeperFunction",
         "index-writer": "IndexWriterFunction"}
# Memory storage and queue, as under cargo lambda where they are the
# code's defaults (the template declares DynamoDB and SQS, so sam local
# needs them said), and no Management API to push to (the template's
# WEBSOCKET_ENDPOINT names a deployed stage): empty, as under cargo
# lambda, where it is unset.
base = {"STORAGE_TYPE": "memory", "QUEUE_TYPE": "memory", "WEBSOCKET_ENDPOINT": ""}
envs = {n: dict(base, **meta.get(b, {}).get("env", {})) for b, n in names.items()}
# The index writer needs DynamoDB and S3: the moto server of this run, a
# bucket of its own under each runner (the second writer would otherwise
# find the first one's image and write none).
moto, bucket = sys.argv[2], sys.argv[3]
envs["IndexWriterFunction"] = dict(envs.get("IndexWriterFunction", {}), STORAGE_TYPE="dynamodb",
    PEOPLE_TABLE="people", INDEX_BUCKET=bucket, AWS_ENDPOINT_URL=moto)
json.dump(envs, open(sys.argv[1], "w"))
EOF

echo "== sam local invoke, every fixture, against cargo lambda invoke"
function_of() {
    case "$1" in
        query-*) echo "QueryApiFunction query-api" ;;
        enqueue-*) echo "EnqueueFunction enqueue" ;;
        sqs-*) echo "ProcessorFunction processor" ;;
        ws-authorize*) echo "AuthorizerFunction authorizer" ;;
        ws-*) echo "WebSocketFunction websocket" ;;
        scheduled-index-writer*) echo "IndexWriterFunction index-writer" ;;
        scheduled*) echo "SweeperFunction sweeper" ;;
        *) echo "" ;;
    esac
}
# The same binaries under cargo lambda's runtime API, for the comparison.
lambda_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
.venv/bin/cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$lambda_port" >"$work/cargo-lambda.log" 2>&1 &
pids+=($!)
for i in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$lambda_port") 2>/dev/null && break; sleep 0.2; done
for binary in query-api enqueue processor websocket authorizer sweeper index-writer; do
    env $(.venv/bin/python -c "import json,sys; e=json.load(open('$envs')); n={'query-api':'QueryApiFunction','enqueue':'EnqueueFunction','processor':'ProcessorFunction','websocket':'WebSocketFunction','authorizer':'AuthorizerFunction','sweeper':'SweeperFunction','index-writer':'IndexWriterFunction'}['$binary']; v=e[n]; v.update(INDEX_BUCKET='index-cl', AWS_ENDPOINT_URL='$moto') if n=='IndexWriterFunction' else None; print(' '.join(f'{k}={v}' for k,v in v.items()))") \
        AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$lambda_port/.rt/$binary" AWS_LAMBDA_FUNCTION_NAME="$binary" \
        AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 \
        "$bin/$binary" >"$work/$binary.log" 2>&1 &
    pids+=($!)
done
# The authorizer exists only with JwtIssuer set.
params=(--parameter-overrides "JwtIssuer=https://idp.example.com/ JwtAudience=people-directory")
failed=0
normalize() { # the answer, without what differs between two runs of a handler
    .venv/bin/python -c '
import json, re, sys
text = sys.stdin.read().strip().splitlines()
answer = json.loads(text[-1]) if text else None
def clean(v):
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if k not in ("x-correlation-id", "requestId", "multiValueHeaders", "cookies")}
    if isinstance(v, list):
        return [clean(x) for x in v]
    if isinstance(v, str):
        try:
            # An image key: its feed position and the time it was written.
            v = re.sub(r"^index/\d{20}-\d{13}\.img$", "index/<version>-<ms>.img", v)
            return clean(json.loads(v)) if v[:1] in "{[" else re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", v))
        except ValueError:
            return v
    return v
print(json.dumps(clean(answer), sort_keys=True))'
}
for fixture in events/*.json; do
    name="$(basename "$fixture" .json)"
    read -r logical binary <<<"$(function_of "$name")"
    [ -n "$logical" ] || { echo "  $name: no function for this fixture" >&2; failed=1; continue; }
    sam_out="$($sam local invoke "$logical" "${common[@]}" "${params[@]}" --env-vars "$envs" -e "$fixture" 2>"$work/$name.sam.log" | tail -n 1)" || true
    cl_out="$(curl -s -m 60 -X POST "http://127.0.0.1:$lambda_port/2015-03-31/functions/$binary/invocations" --data-binary "@$fixture")" || true
    a="$(echo "$sam_out" | normalize 2>/dev/null || echo "unreadable: $sam_out")"
    b="$(echo "$cl_out" | normalize 2>/dev/null || echo "unreadable: $cl_out")"
    if [ -n "$sam_out" ] && [ "$a" = "$b" ]; then
        echo "  $name -> $logical: same answer (${a:0:90})"
    else
        echo "  $name -> $logical: DIFFERENT" >&2
        echo "    sam local:    $sam_out" >&2
        echo "    cargo lambda: $cl_out" >&2
        tail -n 5 "$work/$name.sam.log" >&2
        failed=1
    fi
done

echo "== sam local start-api: the query routes"
api_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
$sam local start-api "${common[@]}" --env-vars "$envs" --host 127.0.0.1 --port "$api_port" \
    --warm-containers LAZY >"$work/start-api.log" 2>&1 &
pids+=($!)
for i in $(seq 1 150); do curl -s -o /dev/null -m 2 "http://127.0.0.1:$api_port/" && break; sleep 0.2; done
for path in "/people/p0000001" "/people?search=jo" "/filters" "/people/nobody"; do
    code="$(curl -s -o "$work/answer.json" -m 120 -w '%{http_code}' "http://127.0.0.1:$api_port$path")" || code=000
    echo "  GET $path: $code $(head -c 80 "$work/answer.json")"
    case "$path:$code" in
        /people/nobody:404 | /people/p0000001:200 | "/people?search=jo:200" | /filters:200) ;;
        *) echo "  unexpected answer" >&2; tail -n 20 "$work/start-api.log" >&2; failed=1 ;;
    esac
done

echo "== sam local start-lambda, with the local server in front (front mode)"
invoke_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
front_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
$sam local start-lambda "${common[@]}" --env-vars "$envs" --host 127.0.0.1 --port "$invoke_port" \
    --warm-containers LAZY >"$work/start-lambda.log" 2>&1 &
pids+=($!)
for i in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$invoke_port") 2>/dev/null && break; sleep 0.2; done
"$bin/local" --functions "http://127.0.0.1:$invoke_port" --function-names logical-id \
    --port "$front_port" 2>"$work/front.log" &
pids+=($!)
for i in $(seq 1 150); do curl -s -o /dev/null -m 2 "http://127.0.0.1:$front_port/metrics" && break; sleep 0.2; done
for path in "/people/p0000001" "/filters"; do
    code="$(curl -s -o "$work/answer.json" -m 120 -w '%{http_code}' "http://127.0.0.1:$front_port$path")" || code=000
    echo "  GET $path through the local server and sam local start-lambda: $code $(head -c 80 "$work/answer.json")"
    [ "$code" = 200 ] || { tail -n 20 "$work/start-lambda.log" "$work/front.log" >&2; failed=1; }
done

if [ "$failed" != 0 ]; then
    echo "sam local: FAILED (logs in $work)" >&2
    exit 1
fi
echo "sam local: every fixture, start-api and start-lambda answered as expected"
