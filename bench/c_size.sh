#!/usr/bin/env bash
# Size of the verify-only code a firmware links: text + data (`size`) of a minimal C program that
# verifies a manifest and streams an image (bench/c_size_min.c) against the static library,
# minus those of an empty program; gcc -Os -ffunction-sections -fdata-sections -Wl,--gc-sections.
# Target: ≤ 64 KiB. The host (x86_64) stands in for the device, which cannot be built here.
#
# The library is built the way firmware would link it: `no_std` with the `c-runtime` feature
# (panic handler + malloc-based allocator), opt-level "z", fat LTO, panic = "abort", one codegen
# unit — in a profile defined on the command line, in its own target directory. Three variants:
#   device   curve25519-dalek's portable "serial" backend: what riscv32 / xtensa builds get
#            (they have no SIMD backend); the figure that counts
#   host     the default backend selection on x86_64, which adds AVX2 code behind run-time CPU
#            detection that a device build never contains
#   std      the default `std` build (catch_unwind + thread-local last error), for comparison
# Each variant still carries sha2's x86 SHA-NI/AVX2 code paths (≈5 KiB) that device builds lack.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${TARGET_DIR:-target}/c-size"
mkdir -p "$out"

profile=(--config 'profile.minsize.inherits="release"' --config 'profile.minsize.opt-level="z"'
         --config 'profile.minsize.lto=true' --config 'profile.minsize.panic="abort"'
         --config 'profile.minsize.codegen-units=1' --config 'profile.minsize.debug=false'
         --config 'profile.minsize.strip="debuginfo"')
build() { # variant, extra cargo args...
    local variant="$1"
    shift
    cargo rustc -q -p fwledger-c --crate-type staticlib --profile minsize "${profile[@]}" \
        --target-dir "$out/$variant" "$@"
}
build device --no-default-features --features c-runtime \
    --config 'build.rustflags=["--cfg","curve25519_dalek_backend=\"serial\""]'
build host --no-default-features --features c-runtime
build std

cflags=(-Os -ffunction-sections -fdata-sections -Iinclude)
gcc "${cflags[@]}" bench/c_size_empty.c -o "$out/empty" -Wl,--gc-sections
textdata() { size "$1" | awk 'NR == 2 { print $1 + $2 }'; }
base=$(textdata "$out/empty")

# Test data: the first manifest of the shared vectors, its image and the vendor key.
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
v = json.load(open("tests/vectors/proto.json"))
m = v["manifests"][0]
key = next(k for k in v["keys"] if k["name"] == "acme/root")["public"]
open(f"{out}/manifest.cose", "wb").write(bytes.fromhex(m["signed"]))
open(f"{out}/key.bin", "wb").write(bytes.fromhex(key))
size = v["image"]["size"]
open(f"{out}/image.bin", "wb").write(bytes((i * 7 + 3) % 256 for i in range(size)))
PY

printf '%-8s %10s %10s %12s\n' variant "text+data" "- empty" "KiB"
for variant in device host std; do
    libs=()
    [ "$variant" = std ] && libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl)
    exe="$out/min-$variant"
    gcc "${cflags[@]}" bench/c_size_min.c -o "$exe" \
        "$out/$variant/minsize/libfwledger_c.a" -Wl,--gc-sections "${libs[@]}"
    # The program must really verify (a size of code that does nothing would prove nothing).
    "$exe" "$out/manifest.cose" "$out/image.bin" "$out/key.bin"
    total=$(textdata "$exe")
    printf '%-8s %10d %10d %12s\n' "$variant" "$total" "$((total - base))" \
        "$(echo "scale=1; ($total - $base) / 1024" | bc -l)"
done
echo "target: device ≤ 64 KiB"
