#!/usr/bin/env bash
# Builds the fwledger C library (release) and installs it under PREFIX:
#   PREFIX/include/fwledger.h
#   PREFIX/lib/libfwledger.a
#   PREFIX/lib/libfwledger.so.X.Y.Z, libfwledger.so.ABI -> it, libfwledger.so -> it
#   PREFIX/lib/pkgconfig/fwledger.pc, fwledger-static.pc
#   PREFIX/lib/cmake/fwledger/fwledgerConfig.cmake, fwledgerConfigVersion.cmake
# The installed tree is relocatable (pkg-config and CMake files find it relative to themselves).
#
# Usage: bindings/c/install.sh PREFIX      (e.g. /usr/local, or a staging directory)
# Environment: CARGO (default cargo), CARGO_TARGET_DIR (default <repo>/target),
#              FWLEDGER_CARGO_FLAGS (extra flags for cargo build, e.g. --locked).
# Needs: cargo (Rust ≥ 1.85) and a C toolchain's linker. Linux (the native-library list and the
# SONAME are Linux's); for ESP32 firmware see bindings/c/README.md instead.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$1"
prefix="$(cd "$1" && pwd)"
cargo="${CARGO:-cargo}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

# shellcheck disable=SC2086 # FWLEDGER_CARGO_FLAGS is a list of flags
"$cargo" build --manifest-path "$root/Cargo.toml" -p fwledger-c --release ${FWLEDGER_CARGO_FLAGS:-}

version="$("$cargo" pkgid --manifest-path "$root/Cargo.toml" -p fwledger-c)"
version="${version##*[@#]}"
major="${version%%.*}"
rest="${version#*.}"
minor="${rest%%.*}"
if [ "$major" = 0 ]; then abi="0.$minor"; else abi="$major"; fi
# What the Rust standard library in the static archive needs on Linux
# (`rustc --print native-static-libs`).
native_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cmake_native_libs="m;rt;util;gcc_s"
sizeof_void_p="$(getconf LONG_BIT)"
sizeof_void_p=$((sizeof_void_p / 8))

lib="$prefix/lib"
install -d "$prefix/include" "$lib/pkgconfig" "$lib/cmake/fwledger"
install -m 644 "$root/include/fwledger.h" "$prefix/include/fwledger.h"
install -m 644 "$target_dir/release/libfwledger_c.a" "$lib/libfwledger.a"
install -m 755 "$target_dir/release/libfwledger_c.so" "$lib/libfwledger.so.$version"
ln -sfn "libfwledger.so.$version" "$lib/libfwledger.so.$abi"
ln -sfn "libfwledger.so.$abi" "$lib/libfwledger.so"

subst() {
    sed -e "s|@VERSION@|$version|g" -e "s|@VERSION_MAJOR@|$major|g" \
        -e "s|@VERSION_MINOR@|$minor|g" -e "s|@ABI@|$abi|g" \
        -e "s|@NATIVE_LIBS@|$native_libs|g" -e "s|@CMAKE_NATIVE_LIBS@|$cmake_native_libs|g" \
        -e "s|@SIZEOF_VOID_P@|$sizeof_void_p|g" "$1" > "$2"
    chmod 644 "$2"
}
subst "$here/cmake/fwledger.pc.in" "$lib/pkgconfig/fwledger.pc"
subst "$here/cmake/fwledger-static.pc.in" "$lib/pkgconfig/fwledger-static.pc"
subst "$here/cmake/fwledgerConfig.cmake.in" "$lib/cmake/fwledger/fwledgerConfig.cmake"
subst "$here/cmake/fwledgerConfigVersion.cmake.in" "$lib/cmake/fwledger/fwledgerConfigVersion.cmake"

echo "installed fwledger $version (C API) under $prefix"
