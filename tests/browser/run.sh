#!/usr/bin/env bash
# The gateway web UI in headless Chromium (playwright-core driving Debian's /usr/bin/chromium).
#
#   tests/browser/run.sh
#
# Builds the `web_ui` example (a vendor, a gateway with mosquitto on free loopback ports, one
# device and one published release), starts it, runs `node --test` here and always stops the
# gateway again. Screenshots land in tests/browser/artifacts/.
# Needs: apt-get install -y chromium mosquitto nodejs npm (and cargo).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

missing=()
[ -x "$CHROMIUM" ] || missing+=("chromium")
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=("mosquitto")
command -v node >/dev/null || missing+=("nodejs")
command -v npm >/dev/null || missing+=("npm")
if [ "${#missing[@]}" -gt 0 ]; then
    echo "browser test needs: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

(cd "$root" && cargo build --quiet -p fwledger-gateway --example web_ui)
gateway_bin="$root/target/debug/examples/web_ui"
if [ ! -d "$here/node_modules/playwright-core" ]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi
mkdir -p "$here/artifacts"
rm -f "$here"/artifacts/*.png

work="$(mktemp -d)"
pid=""
cleanup() {
    # Closing the gateway's stdin asks it to stop (it stops mosquitto too); then be firm.
    exec 3>&- 2>/dev/null || true
    if [ -n "$pid" ]; then
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The gateway reads its stdin from a FIFO this script holds open: if the script dies, even by
# SIGKILL, the gateway sees end-of-file and stops.
mkfifo "$work/stdin"
"$gateway_bin" "$work/home" <"$work/stdin" >"$work/ready.json" 2>"$work/gateway.log" &
pid=$!
exec 3>"$work/stdin"

for _ in $(seq 1 600); do
    [ -s "$work/ready.json" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "the gateway exited before it was ready:" >&2
        cat "$work/gateway.log" >&2
        exit 1
    fi
    sleep 0.2
done
if [ ! -s "$work/ready.json" ]; then
    echo "the gateway was not ready within 120 s:" >&2
    cat "$work/gateway.log" >&2
    exit 1
fi

read_field() {
    node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(r[process.argv[2]]);' \
        "$work/ready.json" "$1"
}
FWLEDGER_URL="$(read_field url)"
FWLEDGER_USER="$(read_field user)"
FWLEDGER_PASSWORD="$(read_field password)"
export FWLEDGER_URL FWLEDGER_USER FWLEDGER_PASSWORD
echo "gateway web UI at $FWLEDGER_URL"

cd "$here"
status=0
node --test --test-concurrency=1 ui.test.mjs rollout.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- gateway log ---" >&2
    tail -n 50 "$work/gateway.log" >&2 || true
fi
exit "$status"
