#!/usr/bin/env bash
# firmware-c tests, non-interactive; exits non-zero on any failure.
#
#  1. installs the Debian packages it needs when missing (apt-get update only if the install
#     fails): cmake ninja-build gcc pkg-config python3 openssl mosquitto mosquitto-clients
#     libmosquitto-dev libcurl4-openssl-dev libqrencode-dev;
#  2. builds the fwledger C library (cargo build -p fwledger-c --release) and the CLI that signs
#     the end-to-end releases (cargo build -p fwledger-cli --release);
#  3. configures firmware-c (host build: agent core, POSIX port, fwledger-device-c, tests) with
#     Ninja and runs ctest: unit_* under ASan + UBSan, e2e_* against a gateway stand-in made of
#     real parts on 127.0.0.1.
#
# Environment: FWLEDGER_CARGO_FLAGS (default --locked), CARGO_TARGET_DIR, FWLEDGER_FIRMWARE_C_DIR
# (build directory, default <target>/firmware-c), FWLEDGER_CTEST_JOBS (default 1: the e2e cases
# are timing-bounded and the machine is shared).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

# -- packages ----------------------------------------------------------------------------------
packages=(cmake ninja-build gcc pkg-config python3 openssl mosquitto mosquitto-clients
          libmosquitto-dev libcurl4-openssl-dev libqrencode-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" || { apt-get update -q && apt-get install -y -q "${missing[@]}"; }
fi

cargo_flags="${FWLEDGER_CARGO_FLAGS---locked}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
build="${FWLEDGER_FIRMWARE_C_DIR:-$target_dir/firmware-c}"

# -- Rust parts --------------------------------------------------------------------------------
echo "== cargo build -p fwledger-c -p fwledger-cli --release"
# shellcheck disable=SC2086 # cargo_flags is a list of flags
cargo build -q -p fwledger-c -p fwledger-cli --release $cargo_flags

# -- build and test ----------------------------------------------------------------------------
echo "== configure $build"
cmake -G Ninja -S "$root/firmware-c" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
    -DFWLEDGER_ROOT="$root" \
    -DFWLEDGER_C_LIB="$target_dir/release/libfwledger_c.a" \
    -DFWLEDGER_CLI="$target_dir/release/fwledger" >/dev/null
cmake --build "$build"
echo "== ctest"
ctest --test-dir "$build" --output-on-failure -j "${FWLEDGER_CTEST_JOBS:-1}"
echo "== firmware-c tests passed"
