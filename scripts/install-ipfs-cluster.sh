#!/usr/bin/env bash
# Builds IPFS Cluster (`ipfs-cluster-service`, the peer daemon, and `ipfs-cluster-ctl`, its
# client) from the Go module proxy, once, into a cache outside the repository, and prints the
# paths of both binaries, one per line (service first).
#
# v1.1.0 is the newest IPFS Cluster release the Go module proxy serves (v1.1.1 and later are
# refused). The tests find the service through $FWLEDGER_IPFS_CLUSTER.
set -euo pipefail

CLUSTER_VERSION="${CLUSTER_VERSION:-v1.1.0}"
CACHE="${FWLEDGER_CACHE:-$HOME/.cache/fwledger}"
DIR="$CACHE/ipfs-cluster-$CLUSTER_VERSION"
SERVICE="$DIR/ipfs-cluster-service"
CTL="$DIR/ipfs-cluster-ctl"

if [ -x "$SERVICE" ] && [ -x "$CTL" ] && "$SERVICE" --version >/dev/null 2>&1 \
    && "$CTL" --version >/dev/null 2>&1; then
    echo "$SERVICE"
    echo "$CTL"
    exit 0
fi

command -v go >/dev/null || { echo "install-ipfs-cluster: Go is required" >&2; exit 1; }
mkdir -p "$DIR"
# `go install pkg@version` first asks the proxy for the module's version list (to check for a
# deprecation notice), which the proxy refuses for this module; so the exact version is
# downloaded and built inside a copy of it, with its own go.mod and go.sum.
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/ipfs-cluster/ipfs-cluster@$CLUSTER_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] \
    || { echo "install-ipfs-cluster: cannot download ipfs-cluster $CLUSTER_VERSION" >&2; exit 1; }

tmp=$(mktemp -d "$CACHE/ipfs-cluster-src.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -r "$dir"/. "$tmp"/
chmod -R u+w "$tmp"
start=$(date +%s)
(cd "$tmp" \
    && go build -trimpath -o ipfs-cluster-service ./cmd/ipfs-cluster-service \
    && go build -trimpath -o ipfs-cluster-ctl ./cmd/ipfs-cluster-ctl) >&2
mv "$tmp/ipfs-cluster-service" "$SERVICE"
mv "$tmp/ipfs-cluster-ctl" "$CTL"
echo "install-ipfs-cluster: built ipfs-cluster $CLUSTER_VERSION in $(( $(date +%s) - start )) s" >&2
echo "$SERVICE"
echo "$CTL"
