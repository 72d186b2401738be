#!/usr/bin/env bash
# Image verification throughput: `fwledger verify` (manifest + streaming size/SHA-256 check)
# against `openssl dgst -sha256` on the same 512 MiB file. Target: ≥ 90 % of OpenSSL.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-512}"
RUNS="${RUNS:-3}"
cargo build --release -q -p fwledger-cli
bin=target/release/fwledger
work=$(mktemp -d /tmp/fwledger-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/image.bin"
"$bin" --home "$work/home" vendor init --name bench >/dev/null
json=$("$bin" --home "$work/home" vendor publish "$work/image.bin" --model m --hw h --version 1.0.0 --json)
manifest=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_path"])')
key=$("$bin" --home "$work/home" vendor key)
cat "$work/image.bin" > /dev/null  # warm the page cache

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
t_verify=$(best "$bin" verify --manifest "$manifest" --image "$work/image.bin" --vendor-key "$key")
rate() { echo "scale=1; $SIZE_MIB / $1" | bc -l; }
echo "openssl dgst -sha256: $(rate "$t_openssl") MiB/s (${t_openssl}s)"
echo "fwledger verify:      $(rate "$t_verify") MiB/s (${t_verify}s)"
echo "ratio: $(echo "scale=1; 100 * $t_openssl / $t_verify" | bc -l) % of openssl"
