#!/usr/bin/env bash
# Installs, once, the Python tools the tests use into the git-ignored
# project-local .venv: the moto server (DynamoDB, SQS and API Gateway
# Management API on loopback), the SAM CLI, cfn-lint, and cargo-lambda with
# the Zig it cross-compiles with (`sam build` finds both on PATH when the
# venv's bin is on it; scripts/sam-build.sh puts it there). Pinned, so every machine tests against the
# same emulator. Re-run after changing the pins: it installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
pins=("moto[server]==5.2.5" "aws-sam-cli==1.170.0" "cfn-lint==1.58.0"
      "cargo-lambda==1.9.2" "ziglang==0.17.0")
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/pip install --quiet --disable-pip-version-check "${pins[@]}"; then
    echo "python-tools: could not install ${pins[*]} into .venv" >&2
    exit 1
fi
for tool in moto_server sam cargo-lambda python-zig; do
    [ -x ".venv/bin/$tool" ] || { echo "python-tools: $tool missing after install" >&2; exit 1; }
done
