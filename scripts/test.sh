#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine: installs what the tests need,
# then format, lints, the no_std build, and the test suites. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n== %s\n' "$*"; }

section "tools"
# Debian packages the tests drive for real (installed only when missing): mosquitto (broker),
# chrony (a real NTP client for the gateway's SNTP responder, only ever run as `chronyd -Q`),
# chromium (web UI tests).
need_apt=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v chronyd >/dev/null || [ -x /usr/sbin/chronyd ] || need_apt+=(chrony)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# openssl s_client: the TLS hardening tests (gateway HTTPS and the MQTT listener).
command -v openssl >/dev/null || need_apt+=(openssl)
# curl: the fault tests fetch /fw/… and /metrics from a gateway under test.
command -v curl >/dev/null || need_apt+=(curl)
if [ "${#need_apt[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Installed packages must not start their services (chronyd would reach for public NTP
    # servers; the tests start their own brokers on loopback).
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null; }
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
    for service in mosquitto chrony; do
        (systemctl disable --now "$service" || service "$service" stop) >/dev/null 2>&1 || true
    done
fi
# Kubo: the oracle for CID tests and the real IPFS backend (private swarms, trustless gateways).
FWLEDGER_KUBO="$(bash scripts/install-kubo.sh)"
export FWLEDGER_KUBO FWLEDGER_REQUIRE_KUBO=1
# The disk-full fault test mounts a small tmpfs (CI runs as root): it must not skip quietly.
export FWLEDGER_REQUIRE_MOUNT=1
# IPFS Cluster for the cluster-store tests (built once from the Go module proxy, cached).
FWLEDGER_IPFS_CLUSTER="$(bash scripts/install-ipfs-cluster.sh | sed -n 1p)"
export FWLEDGER_IPFS_CLUSTER FWLEDGER_REQUIRE_CLUSTER=1
# Every CID vector, including the 1 GiB ones (fast: the hashing crates are optimized in dev).
export FWLEDGER_SLOW_TESTS=1
"$FWLEDGER_KUBO" version

# A test run builds everything once: incremental caches would only cost disk and time.
export CARGO_INCREMENTAL=0

section "format"
cargo fmt --all --check

section "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

section "no_std protocol core"
cargo build -p fwledger-proto --no-default-features --locked

section "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

section "tests"
# The Swift drift test generates from the uniffi cdylib, which `cargo test` alone does not build.
cargo build -p fwledger-uniffi --locked
cargo test --workspace --locked

section "C API (ctest, plain and ASan+UBSan)"
bash bindings/c/tests/run.sh

if [ -f firmware-c/tests/run.sh ]; then
    section "firmware-c: C device agent (ctest)"
    bash firmware-c/tests/run.sh
    section "attack matrix: the C device agent column (docs/SECURITY.md)"
    FWLEDGER_C_AGENT="${FWLEDGER_FIRMWARE_C_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/firmware-c}/fwledger-device-c" \
    FWLEDGER_REQUIRE_C_AGENT=1 \
        cargo test -p fwledger-cli --test attacks --locked -- compromised_gateway_vs_c_agent
fi

section "web UIs in headless Chromium (gateway, vendor portal)"
bash tests/browser/run.sh
bash tests/browser/run_portal.sh

if [ -f bindings/kotlin/run.sh ]; then
    section "Kotlin bindings on the JVM (uniffi)"
    bash bindings/kotlin/run.sh
fi

if [ -f bindings/python/tests/run.sh ]; then
    section "Python bindings (pytest)"
    bash bindings/python/tests/run.sh
fi

section "all checks passed"
