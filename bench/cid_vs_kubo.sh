#!/usr/bin/env bash
# CID throughput: Kubo's `ipfs add --only-hash -Q` vs fwledger-store's `cid` example, per profile.
#
#   bench/cid_vs_kubo.sh [SIZE_MIB]      (default 512)
#
# Kubo: `ipfs` on PATH or $FWLEDGER_KUBO. Kubo has no per-command profile flag; each profile gets
# its own throw-away repo (`ipfs init --profile=test,<profile>`) in a temp IPFS_PATH. No daemon is
# started; --offline --only-hash never touches the network. The file is read from a warm page
# cache; each timing is the best of $RUNS (default 3). MB = 10^6 bytes.
set -euo pipefail

SIZE_MIB=${1:-512}
RUNS=${RUNS:-3}
KUBO=${FWLEDGER_KUBO:-$(command -v ipfs || true)}
[ -x "$KUBO" ] || { echo "Kubo not found: put ipfs on PATH or set FWLEDGER_KUBO" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)

WORK=$(mktemp -d /tmp/fwledger-cid-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FILE=$WORK/data.bin

echo "building the cid example (release)..." >&2
cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p fwledger-store --example cid
OURS=$ROOT/target/release/examples/cid

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$FILE"
cat "$FILE" >/dev/null # warm the page cache
BYTES=$(stat -c %s "$FILE")

# best wall time of $RUNS runs of "$@"; the command's stdout goes to $WORK/out
best_time() {
    local best=""
    for _ in $(seq "$RUNS"); do
        local t0 t1
        t0=$(date +%s.%N)
        "$@" >"$WORK/out"
        t1=$(date +%s.%N)
        best=$(echo "$t0 $t1 $best" | awk '{d = $2 - $1; if ($3 == "" || d < $3) print d; else print $3}')
    done
    echo "$best"
}

mbps() { echo "$1" | awk -v b="$BYTES" '{printf "%.0f", b / 1e6 / $1}'; }

"$KUBO" version
printf '%-16s %-10s %10s %10s  %s\n' profile tool seconds MB/s cid
for profile in unixfs-v1-2025 unixfs-v0-2015; do
    export IPFS_PATH=$WORK/kubo-$profile
    "$KUBO" init --profile="test,$profile" -e >/dev/null

    t=$(best_time "$KUBO" add --offline --only-hash -Q "$FILE")
    kubo_cid=$(cat "$WORK/out")
    printf '%-16s %-10s %10.3f %10s  %s\n' "$profile" kubo "$t" "$(mbps "$t")" "$kubo_cid"

    t=$(best_time "$OURS" "$FILE" "$profile")
    our_cid=$(cat "$WORK/out")
    printf '%-16s %-10s %10.3f %10s  %s\n' "$profile" fwledger "$t" "$(mbps "$t")" "$our_cid"

    [ "$kubo_cid" = "$our_cid" ] || { echo "CID MISMATCH for $profile" >&2; exit 1; }
done
