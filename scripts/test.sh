#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine: installs what the tests need,
# then format, lints, the no_std build, and the test suites. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n== %s\n' "$*"; }

section "tools"
# Debian packages the tests drive for real (installed only when missing).
need_apt=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
if [ "${#need_apt[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null; }
    # The tests start their own brokers; never leave the system service running.
    (systemctl disable --now mosquitto || service mosquitto stop) >/dev/null 2>&1 || true
fi
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

section "C API (ctest, plain and ASan+UBSan)"
bash bindings/c/tests/run.sh

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
