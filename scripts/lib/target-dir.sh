# Sourced, not run: `. scripts/lib/target-dir.sh` from the repository root.
#
# cargo_target_dir prints cargo's target directory for this workspace, as
# cargo itself resolves it (CARGO_TARGET_DIR, a `build.target-dir` in a
# .cargo/config.toml, else target/ beside Cargo.toml): an absolute path.
# The scripts find the binaries cargo built there (<dir>/debug/local,
# <dir>/release/examples/soak, ...) and keep their scratch files in it, so
# they work with CARGO_TARGET_DIR set as without it.
cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
