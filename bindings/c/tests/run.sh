#!/usr/bin/env bash
# C tests of the fwledger C API, non-interactive; exits non-zero on any failure.
#
#  1. checks that include/fwledger.h equals what cbindgen generates (cargo test --test header);
#  2. builds the Rust library (cargo build -p fwledger-c --release) and installs it into a
#     staging prefix with bindings/c/install.sh — which also exercises the install script, the
#     pkg-config files and the CMake package config;
#  3. configures the CMake test project (find_package(fwledger)) with Ninja and runs ctest,
#     plainly and under AddressSanitizer + UndefinedBehaviorSanitizer (with LeakSanitizer);
#  4. builds the firmware shape of the library (`no_std` + `c-runtime`, panic = "abort") and
#     checks that a C program linked to it verifies the vector manifest and image.
#
# Debian packages needed (installed below when missing): cmake ninja-build gcc g++ pkg-config
# python3 (gcc brings libasan and libubsan).
#
# Environment: FWLEDGER_CARGO_FLAGS (default --locked), CARGO_TARGET_DIR, FWLEDGER_C_TESTS_DIR
# (build directory, default <target>/c-tests).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"

# -- tools -------------------------------------------------------------------------------------
missing=()
for pair in cmake:cmake ninja:ninja-build gcc:gcc g++:g++ pkg-config:pkg-config python3:python3; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" || { apt-get update -q && apt-get install -y -q "${missing[@]}"; }
fi

cargo_flags="${FWLEDGER_CARGO_FLAGS---locked}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
build="${FWLEDGER_C_TESTS_DIR:-$target_dir/c-tests}"
stage="$build/stage"

# -- header ------------------------------------------------------------------------------------
echo "== header: include/fwledger.h is what cbindgen generates"
# shellcheck disable=SC2086 # cargo_flags is a list of flags
cargo test -q -p fwledger-c --test header $cargo_flags

# -- library -----------------------------------------------------------------------------------
echo "== library: build and install into $stage"
rm -rf "$stage"
FWLEDGER_CARGO_FLAGS="$cargo_flags" bash "$root/bindings/c/install.sh" "$stage"

# -- C tests -----------------------------------------------------------------------------------
run_ctest() { # name, extra cmake args...
    local name="$1"
    shift
    echo "== ctest: $name"
    cmake -G Ninja -S "$here" -B "$build/$name" -DCMAKE_PREFIX_PATH="$stage" \
        -DCMAKE_BUILD_TYPE=Debug "$@" >/dev/null
    cmake --build "$build/$name"
    ctest --test-dir "$build/$name" --output-on-failure
}

run_ctest plain -DFWLEDGER_SANITIZE=OFF
# halt_on_error: the first report fails the test; LeakSanitizer checks every *_free path too.
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    run_ctest sanitize -DFWLEDGER_SANITIZE=ON

# -- firmware shape ----------------------------------------------------------------------------
echo "== no_std library (firmware shape)"
# LTO as in firmware builds; on this host it also drops the reference to rust_eh_personality
# that the precompiled (panic = "unwind") alloc library carries.
# shellcheck disable=SC2086 # cargo_flags is a list of flags
cargo rustc -q -p fwledger-c --release --crate-type staticlib $cargo_flags \
    --no-default-features --features c-runtime --config 'profile.release.panic="abort"' \
    --config 'profile.release.lto=true' --target-dir "$build/nostd"
nostd="$build/nostd-smoke"
mkdir -p "$nostd"
python3 - "$nostd" <<'PY'
import json, sys
out = sys.argv[1]
v = json.load(open("tests/vectors/proto.json"))
key = next(k for k in v["keys"] if k["name"] == "acme/root")["public"]
open(f"{out}/manifest.cose", "wb").write(bytes.fromhex(v["manifests"][0]["signed"]))
open(f"{out}/key.bin", "wb").write(bytes.fromhex(key))
open(f"{out}/image.bin", "wb").write(bytes((i * 7 + 3) % 256 for i in range(v["image"]["size"])))
open(f"{out}/bad.bin", "wb").write(bytes((i * 7 + 4) % 256 for i in range(v["image"]["size"])))
PY
gcc -std=c99 -Wall -Wextra -Werror -Iinclude bench/c_size_min.c -o "$nostd/verify" \
    "$build/nostd/release/libfwledger_c.a"
"$nostd/verify" "$nostd/manifest.cose" "$nostd/image.bin" "$nostd/key.bin"
if "$nostd/verify" "$nostd/manifest.cose" "$nostd/bad.bin" "$nostd/key.bin"; then
    echo "the no_std library accepted an altered image" >&2
    exit 1
fi
echo "no_std library verifies the vector manifest and image, refuses an altered image"

echo "== C API tests passed (plain, sanitizers, no_std)"
