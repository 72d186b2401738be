#!/usr/bin/env bash
# Scans the TLS endpoints of a real gateway (`fwledger gateway run` in a scratch home, on
# 127.0.0.1 only) with sslscan: the HTTPS port (downloads, web UI) and the MQTT TLS port
# (mosquitto; scanned with the gateway's client certificate, as the listener requires one).
# Prints sslscan's findings and a verdict per endpoint; exits non-zero if any endpoint accepts
# SSLv2/3, TLS 1.0/1.1, a CBC/RC4/3DES/NULL/export suite, static RSA key exchange, or a key
# exchange weaker than 128-bit security, or if its certificate does not verify.
#
#   bash scripts/tls_scan.sh            # installs sslscan (apt) and mosquitto if missing
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sslscan >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends sslscan >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends sslscan >/dev/null; }
fi
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] \
    || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y --no-install-recommends mosquitto >/dev/null; }

cargo build -q -p fwledger-cli
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/fwledger"
work="$(mktemp -d)"
gateway_pid=""
cleanup() {
    if [ -n "$gateway_pid" ]; then
        kill "$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https_port="$(free_port)"
mqtt_port="$(free_port)"
sntp_port="$(free_port)"
home="$work/home"
"$bin" --home "$home" gateway init --bind 127.0.0.1 --https-port "$https_port" \
    --mqtt-port "$mqtt_port" --sntp-port "$sntp_port" >/dev/null
"$bin" --home "$home" gateway run >"$work/gateway.log" 2>&1 &
gateway_pid=$!

wait_port() {
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log" >&2; return 1; }
        sleep 0.2
    done
    echo "port $1 did not open" >&2
    return 1
}
wait_port "$https_port"
wait_port "$mqtt_port"

pki="$(dirname "$(find "$home" -path '*/pki/ca.pem' | head -1)")"
ca="$pki/ca.pem"
client_cert="$pki/gateway.pem"
client_key="$pki/gateway.key"
[ -f "$ca" ] || { echo "no CA certificate under $home" >&2; exit 1; }

status=0
scan() {
    local what="$1" port="$2"
    shift 2
    local out="$work/$what.txt"
    timeout 120 sslscan --no-colour "$@" "127.0.0.1:$port" >"$out" 2>&1 || true
    echo "===== $what (127.0.0.1:$port)"
    sed -n '/SSL\/TLS Protocols/,/Server Key Exchange Group/p' "$out" | grep -v '^$' || cat "$out"
    local bad=""
    grep -Eq '^(SSLv2|SSLv3|TLSv1\.0|TLSv1\.1) +enabled' "$out" && bad+=" old-protocol"
    grep -E '^(Accepted|Preferred)' "$out" | grep -Eq 'CBC|-SHA( |$)|SHA1|RC4|DES|NULL|EXP|[[:space:]]AES|AES(128|256)-SHA' \
        && bad+=" weak-suite"
    grep -E '^(Accepted|Preferred)' "$out" | grep -Eqv 'ECDHE|TLS_AES|TLS_CHACHA20|x25519|secp|Curve' \
        && bad+=" no-forward-secrecy"
    grep -Eq '^TLSv1\.2 +enabled' "$out" || bad+=" no-tls1.2"
    grep -Eq '^TLSv1\.3 +enabled' "$out" || bad+=" no-tls1.3"
    local client=()
    [ "$what" != mqtt ] || client=(-cert "$client_cert" -key "$client_key")
    if timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$ca" -verify_return_error \
        -brief "${client[@]}" </dev/null 2>&1 | grep -q 'Verification: OK'; then
        echo "certificate: verifies against the gateway CA"
    else
        bad+=" certificate"
    fi
    if [ -n "$bad" ]; then
        echo "VERDICT $what: FAIL:$bad"
        status=1
    else
        echo "VERDICT $what: PASS (TLS 1.2 + 1.3 only, forward-secret AEAD suites only)"
    fi
}
scan https "$https_port"
if [ -f "$client_cert" ] && [ -f "$client_key" ]; then
    scan mqtt "$mqtt_port" --certs="$client_cert" --pk="$client_key"
else
    scan mqtt "$mqtt_port"
fi
exit "$status"
