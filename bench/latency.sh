#!/usr/bin/env bash
# Channel latency (issue 6), the paper's figure 10: SETS sets of MESSAGES releases with random
# 400–600-character release notes, vendor → follower (what a gateway runs) in two processes.
# The latency of one message runs from the start of `announce` (seal, sign, append) to the
# follower having read, verified and decrypted it (core/fwledger/examples/channel_latency.rs).
#
#   bash bench/latency.sh                         # embedded ledger, 5 × 300 (the paper's sets)
#   bash bench/latency.sh --ledger URL [--label NAME]   # another backend, e.g. iota+https://…
#   bash bench/latency.sh --messages 50 --sets 2  # quicker
#
# With FWLEDGER_IOTA_URL set, the same sets also run on that IOTA ledger; otherwise that run is
# skipped (and said so). Writes bench/results/latency-LABEL.csv, bench/results/latency.md (mean,
# p50, p95, p99 per set and overall) and bench/results/latency.png (needs matplotlib: with
# target/bench-venv, made by `python3 -m venv target/bench-venv &&
# target/bench-venv/bin/pip install matplotlib`, or any python3 that has it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
messages=300; sets=5; ledgers=(); labels=(); out="$root/bench/results"
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) messages="$2"; shift 2 ;;
        --sets) sets="$2"; shift 2 ;;
        --ledger) ledgers+=("$2"); labels+=("${2%%:*}"); shift 2 ;;
        --label) [ ${#labels[@]} -gt 0 ] || { echo "--label follows --ledger" >&2; exit 2; }
                 labels[${#labels[@]}-1]="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [ ${#ledgers[@]} -eq 0 ]; then
    ledgers=(embedded); labels=(embedded)
    if [ -n "${FWLEDGER_IOTA_URL:-}" ]; then
        ledgers+=("$FWLEDGER_IOTA_URL"); labels+=(iota)
    else
        echo "IOTA: skipped (FWLEDGER_IOTA_URL is not set; no IOTA node is reachable from this machine)"
    fi
fi
mkdir -p "$out"
cargo build --release -q -p fwledger --features iota --example channel_latency
example="$root/target/release/examples/channel_latency"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before"
csvs=()
for i in "${!ledgers[@]}"; do
    ledger=${ledgers[$i]}; label=${labels[$i]}
    csv="$out/latency-$label.csv"
    echo "== $label: $sets sets × $messages messages"
    if [ "$ledger" = embedded ]; then
        "$example" "$messages" "$sets" --csv "$csv" --label "$label"
    else
        "$example" "$messages" "$sets" --csv "$csv" --label "$label" --ledger "$ledger"
    fi
    csvs+=("$csv")
done
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) after"
py=python3
[ -x "$root/target/bench-venv/bin/python" ] && py="$root/target/bench-venv/bin/python"
"$py" bench/plot_latency.py "$out/latency" "${csvs[@]}"
