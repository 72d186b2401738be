#!/usr/bin/env bash
# The vendor portal in headless Chromium (playwright-core driving Debian's /usr/bin/chromium).
#
#   tests/browser/run_portal.sh
#
# Builds `fwledger`, creates a vendor in a temporary home, starts `fwledger vendor serve` on a
# free loopback port, runs `node --test portal.test.mjs` here (log in, upload and publish a
# release through the forms, then read it back with `fwledger channel read --json`) and always
# stops the portal again. Screenshots land in tests/browser/artifacts/portal-*.png.
# Needs: apt-get install -y chromium nodejs npm (and cargo).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

missing=()
[ -x "$CHROMIUM" ] || missing+=("chromium")
command -v node >/dev/null || missing+=("nodejs")
command -v npm >/dev/null || missing+=("npm")
if [ "${#missing[@]}" -gt 0 ]; then
    echo "browser test needs: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

(cd "$root" && cargo build --quiet -p fwledger-cli)
FWLEDGER_BIN="$root/target/debug/fwledger"
if [ ! -d "$here/node_modules/playwright-core" ]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi
mkdir -p "$here/artifacts"
rm -f "$here"/artifacts/portal-*.png

work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FWLEDGER_PORTAL_HOME="$work/home"
"$FWLEDGER_BIN" --home "$FWLEDGER_PORTAL_HOME" vendor init --name acme >/dev/null
# Port 0: the kernel picks a free loopback port, the portal prints it. `timeout` bounds the
# server's life even if this script is killed without running its trap.
timeout 600 "$FWLEDGER_BIN" --home "$FWLEDGER_PORTAL_HOME" vendor serve --http 127.0.0.1:0 \
    --max-upload 8MiB >"$work/portal.out" 2>"$work/portal.log" &
pid=$!

for _ in $(seq 1 300); do
    grep -q '^vendor portal on ' "$work/portal.out" 2>/dev/null && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the portal exited before it was ready:" >&2
        cat "$work/portal.out" "$work/portal.log" >&2
        exit 1
    fi
    sleep 0.1
done
FWLEDGER_PORTAL_URL="$(sed -n 's|^vendor portal on \(http://[^/]*\)/$|\1|p' "$work/portal.out")"
FWLEDGER_PORTAL_PASSWORD="$(sed -n 's/^portal administrator: user admin, password \(.*\)$/\1/p' "$work/portal.out")"
if [ -z "$FWLEDGER_PORTAL_URL" ] || [ -z "$FWLEDGER_PORTAL_PASSWORD" ]; then
    echo "the portal did not start within 30 s:" >&2
    cat "$work/portal.out" "$work/portal.log" >&2
    exit 1
fi
export FWLEDGER_BIN FWLEDGER_PORTAL_HOME FWLEDGER_PORTAL_URL FWLEDGER_PORTAL_PASSWORD
echo "vendor portal at $FWLEDGER_PORTAL_URL"

cd "$here"
status=0
timeout 300 node --test portal.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- portal log ---" >&2
    tail -n 50 "$work/portal.log" >&2 || true
fi
exit "$status"
