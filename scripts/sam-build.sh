#!/usr/bin/env bash
# `sam build`, right the first time on a fresh clone:
#   scripts/sam-build.sh [sam build options...]
# - cargo-lambda and the Zig it links with come from .venv
#   (scripts/python-tools.sh), found by SAM through PATH;
# - the template's target (arm64: aarch64-unknown-linux-gnu) is added to
#   the toolchain once, here, before SAM starts its parallel builds (each
#   `cargo lambda build` would otherwise run its own `rustup target add`,
#   and all but one of them fail on rustup's lock).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-tools.sh
export PATH="$PWD/.venv/bin:$PATH"
target=aarch64-unknown-linux-gnu
for arg in "$@"; do
    case "$arg" in *Architecture=x86_64*) target=x86_64-unknown-linux-gnu ;; esac
done
if ! rustup target list --installed | grep -qx "$target"; then
    echo "== rustup target add $target (once, before the parallel builds)"
    rustup target add "$target"
fi
exec sam build "$@"
