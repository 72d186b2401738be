#!/usr/bin/env bash
# Builds Kubo (the reference IPFS implementation) from the Go module proxy, once, into a cache
# outside the repository, and prints the path of the `ipfs` binary.
#
# Kubo's go.mod carries `exclude` directives, so `go install github.com/ipfs/kubo/cmd/ipfs@V`
# refuses to build it; building inside a copy of the downloaded module honours them instead.
set -euo pipefail

KUBO_VERSION="${KUBO_VERSION:-v0.42.0}"
CACHE="${FWLEDGER_CACHE:-$HOME/.cache/fwledger}"
BIN="$CACHE/kubo-$KUBO_VERSION/ipfs"

if [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; then
    echo "$BIN"
    exit 0
fi

command -v go >/dev/null || { echo "install-kubo: Go is required" >&2; exit 1; }
mkdir -p "$CACHE"
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/ipfs/kubo@$KUBO_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "install-kubo: cannot download kubo $KUBO_VERSION" >&2; exit 1; }

src=$(mktemp -d "$CACHE/kubo-src.XXXXXX")
trap 'rm -rf "$src"' EXIT
cp -r "$dir"/. "$src"/
chmod -R u+w "$src"
start=$(date +%s)
(cd "$src" && go build -trimpath -o "$BIN.tmp" ./cmd/ipfs) >&2
mv "$BIN.tmp" "$BIN"
echo "install-kubo: built kubo $KUBO_VERSION in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
