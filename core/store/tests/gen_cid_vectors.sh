#!/usr/bin/env bash
# Regenerates tests/vectors/cid.json (repo root) from a local Kubo.
#
#   core/store/tests/gen_cid_vectors.sh
#
# Kubo: `ipfs` on PATH or $FWLEDGER_KUBO. For each profile a throw-away repo is created with
# `ipfs init --profile=test,<profile>` in a temp IPFS_PATH (Kubo selects the import profile through
# repo config, not an `add` flag), and the SplitMix64 data of every vector is piped into
# `ipfs add --offline --only-hash -Q`. No daemon is started. The generator and the size list live
# in core/store/tests/cid_vectors.rs (`regenerate_vectors_from_kubo`); the JSON documents the
# generator for the C and Python suites.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
if [ -z "${FWLEDGER_KUBO:-}" ]; then
    FWLEDGER_KUBO=$(command -v ipfs) || { echo "Kubo not found: put ipfs on PATH or set FWLEDGER_KUBO" >&2; exit 1; }
fi
export FWLEDGER_KUBO
cargo test --release --manifest-path "$ROOT/Cargo.toml" -p fwledger-store --test cid_vectors \
    -- --ignored --exact regenerate_vectors_from_kubo --nocapture
