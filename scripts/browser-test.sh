#!/usr/bin/env bash
# The web page in a real browser: Debian's chromium (installed with apt when
# missing) driven by playwright-core (pinned in web/tests/package.json,
# installed into web/tests/node_modules; Playwright's own browser downloads
# are never used), against the local server on 127.0.0.1 on a free port.
# Writes the screenshots in docs/screenshots. Bounded: the test stops itself
# after 5 minutes, and the server is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/target-dir.sh

if ! command -v chromium >/dev/null; then
    echo "installing Debian's chromium"
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends chromium
fi
if ! command -v npm >/dev/null; then
    echo "installing Debian's nodejs and npm"
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_=sudo
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends nodejs npm
fi
want=$(python3 -c 'import json; print(json.load(open("web/tests/package.json"))["dependencies"]["playwright-core"])')
have=$(python3 -c 'import json; print(json.load(open("web/tests/node_modules/playwright-core/package.json"))["version"])' 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    (cd web/tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi

cargo build --quiet --bin local
local_bin=$(cargo_target_dir)/debug/local
log=$(mktemp)
"$local_bin" --bind 127.0.0.1 --port 0 --people 20000 2> "$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
base=""
for _ in $(seq 1 600); do
    base=$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$base" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$log"; echo "the local server stopped"; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { cat "$log"; echo "the local server did not start"; exit 1; }

mkdir -p docs/screenshots
# LOCAL_BIN: the test starts a second server itself, demanding tokens of an
# issuer it serves on 127.0.0.1 (--jwt-issuer), and stops it by its PID.
BASE_URL=$base SCREENSHOTS=$PWD/docs/screenshots CHROMIUM=$(command -v chromium) LOCAL_BIN=$local_bin \
    timeout 300 node web/tests/browser.mjs
