#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine: installs what the tests need,
# then format, lints, the no_std build, and the test suites. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n== %s\n' "$*"; }

section "tools"
# Kubo is the oracle for CID tests (and, later, the real IPFS backend).
FWLEDGER_KUBO="$(bash scripts/install-kubo.sh)"
export FWLEDGER_KUBO FWLEDGER_REQUIRE_KUBO=1
# Every CID vector, including the 1 GiB ones (fast: the hashing crates are optimized in dev).
export FWLEDGER_SLOW_TESTS=1
"$FWLEDGER_KUBO" version

section "format"
cargo fmt --all --check

section "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

section "no_std protocol core"
cargo build -p fwledger-proto --no-default-features --locked

section "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

section "tests"
cargo test --workspace --locked

if [ -d tests/python ] || compgen -G "bindings/python/tests/*.py" >/dev/null; then
    section "python tests"
    set +e
    python3 -m pytest -q
    rc=$?
    set -e
    # Exit code 5 means "no tests collected": not a failure.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
fi

section "all checks passed"
