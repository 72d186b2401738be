#!/usr/bin/env bash
# Verification throughput from Python: `fwledger.verify` (the Python binding) against
# `fwledger verify` (the Rust CLI, release build) and `openssl dgst -sha256`, on the same 512 MiB
# file with a warm page cache. Targets: Python within 5 % of the CLI, and >= 85 % of OpenSSL.
#
# Python is timed twice: the `fwledger.verify` call inside a running interpreter (the API's
# throughput, what the targets are about) and a whole `python -c` process (adds interpreter
# start-up and import, a fixed cost). Best of RUNS runs each. SIZE_MIB and RUNS override.
# Builds the CLI (cargo --release) and the wheel (bindings/python/scripts/venv.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-512}"
RUNS="${RUNS:-5}"

cargo build --release -q -p fwledger-cli
bin=target/release/fwledger
python="$(bash bindings/python/scripts/venv.sh 2>/dev/null)"

work=$(mktemp -d /tmp/fwledger-pybench.XXXXXX)
trap 'rm -rf "$work"' EXIT
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/image.bin"
"$bin" --home "$work/home" vendor init --name bench >/dev/null
json=$("$bin" --home "$work/home" vendor publish "$work/image.bin" --model m --hw h --version 1.0.0 --json)
manifest=$(printf '%s' "$json" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["manifest_path"])')
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

# Interleave the tools run by run, so that a neighbour's load hits all of them alike.
t_openssl=999999 t_cli=999999 t_py_proc=999999
for _ in $(seq "$RUNS"); do
    t=$(RUNS=1 best openssl dgst -sha256 "$work/image.bin")
    (( $(echo "$t < $t_openssl" | bc -l) )) && t_openssl=$t
    t=$(RUNS=1 best "$bin" verify --manifest "$manifest" --image "$work/image.bin" --vendor-key "$key")
    (( $(echo "$t < $t_cli" | bc -l) )) && t_cli=$t
    t=$(RUNS=1 best "$python" -c "import fwledger; fwledger.verify(manifest='$manifest', image='$work/image.bin', vendor_key='$key')")
    (( $(echo "$t < $t_py_proc" | bc -l) )) && t_py_proc=$t
done
t_py=$("$python" - "$manifest" "$work/image.bin" "$key" "$RUNS" <<'EOF'
import sys, time
import fwledger
manifest, image, key, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
best = float("inf")
for _ in range(runs):
    t0 = time.perf_counter()
    fwledger.verify(manifest=manifest, image=image, vendor_key=key)
    best = min(best, time.perf_counter() - t0)
print(f"{best:.6f}")
EOF
)

rate() { echo "scale=1; $SIZE_MIB / $1" | bc -l; }
pct() { echo "scale=1; 100 * $1 / $2" | bc -l; }
echo "file: $SIZE_MIB MiB, best of $RUNS runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "openssl dgst -sha256:          $(rate "$t_openssl") MiB/s (${t_openssl}s)"
echo "fwledger verify (Rust CLI):    $(rate "$t_cli") MiB/s (${t_cli}s)"
echo "fwledger.verify (Python call): $(rate "$t_py") MiB/s (${t_py}s)"
echo "python -c 'fwledger.verify':   $(rate "$t_py_proc") MiB/s (${t_py_proc}s, with interpreter start-up)"
echo "Python call vs CLI:     $(pct "$t_cli" "$t_py") %   (target >= 95 %)"
echo "Python call vs openssl: $(pct "$t_openssl" "$t_py") %   (target >= 85 %)"
echo "CLI vs openssl:         $(pct "$t_openssl" "$t_cli") %"
