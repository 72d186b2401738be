#!/usr/bin/env bash
# C streaming image verification throughput (fwl_image_verifier_update over 64 KiB reads, exact
# size + SHA-256, bench/c_verify_throughput.c, linked to the release static library) against
# `openssl dgst -sha256` on the same 512 MiB file, both from the page cache. Best of RUNS wall
# times each. Target: ≥ 90 % of OpenSSL's throughput.
#
# Environment: SIZE_MIB (default 512), RUNS (default 3), CHUNK (bytes per update, default 65536).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-512}"
RUNS="${RUNS:-3}"
CHUNK="${CHUNK:-65536}"

cargo build -q --release -p fwledger-c
work=$(mktemp -d /tmp/fwledger-c-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Iinclude bench/c_verify_throughput.c -o "$work/c_verify" \
    "${CARGO_TARGET_DIR:-target}/release/libfwledger_c.a" -lpthread -ldl -lm

head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/image.bin"
size=$(stat -c %s "$work/image.bin")
sha=$(openssl dgst -sha256 -r "$work/image.bin" | cut -d' ' -f1)
cat "$work/image.bin" > /dev/null  # warm the page cache
# A wrong digest must be refused, or the timing below measures nothing.
if "$work/c_verify" "$work/image.bin" "$size" "$(printf '%064d' 0)" "$CHUNK" 2>/dev/null; then
    echo "the verifier accepted a wrong digest" >&2
    exit 1
fi

best() { # best wall time of RUNS runs of "$@", in seconds
    local best=999999 t0 t1 t
    for _ in $(seq "$RUNS"); do
        t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        if (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
    done
    echo "$best"
}
t_openssl=$(best openssl dgst -sha256 "$work/image.bin")
t_c=$(best "$work/c_verify" "$work/image.bin" "$size" "$sha" "$CHUNK")
rate() { echo "scale=1; $SIZE_MIB / $1" | bc -l; }
echo "openssl dgst -sha256:        $(rate "$t_openssl") MiB/s (${t_openssl}s)"
echo "C fwl_image_verifier ($CHUNK B): $(rate "$t_c") MiB/s (${t_c}s)"
echo "ratio: $(echo "scale=1; 100 * $t_openssl / $t_c" | bc -l) % of openssl (target ≥ 90 %)"
