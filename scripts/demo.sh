#!/usr/bin/env bash
# The main job on a fresh machine: installs mosquitto if it is missing (the gateway drives it for
# MQTT over TLS with client certificates), builds fwledger and runs `fwledger demo` on the
# embedded ledger and content store. Arguments go to `fwledger demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends mosquitto >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends mosquitto >/dev/null; }
    (systemctl disable --now mosquitto || service mosquitto stop) >/dev/null 2>&1 || true
fi
exec cargo run --release --locked -q -p fwledger-cli -- demo "$@"
