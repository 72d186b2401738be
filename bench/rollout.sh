#!/usr/bin/env bash
# Publish → every device confirmed, with the gateway (and its mosquitto) in their own processes and
# N device agents in one `fwledger device swarm` process, all on loopback. Reports rollout time,
# gateway memory per connected device and gateway CPU while idle.
#
#   bash bench/rollout.sh 100        # targets (issue 3): 100 devices ≤ 5 s, 1000 devices ≤ 20 s,
#   bash bench/rollout.sh 1000       # ≤ 16 KiB gateway memory per connected device
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
cargo build --release -q --locked -p fwledger-cli
bin="$PWD/target/release/fwledger"
work=$(mktemp -d /tmp/fwledger-rollout.XXXXXX)
gw_pid=""; swarm_pid=""
cleanup() {
    [ -z "$swarm_pid" ] || kill "$swarm_pid" 2>/dev/null || true
    [ -z "$gw_pid" ] || { kill -TERM "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now_ms() { date +%s%3N; }

export FWLEDGER_HOME="$work/home"
"$bin" vendor init --name bench >/dev/null
token=$("$bin" vendor token --gateway hub 2>/dev/null)
"$bin" gateway init --mqtt-port "$(free_port)" --https-port "$(free_port)" --sntp-port "$(free_port)" >/dev/null
"$bin" gateway subscribe "$token" >/dev/null
mkdir -p "$work/bundles"
t0=$(now_ms)
for i in $(seq 1 "$N"); do
    "$bin" gateway device add --id "dev-$i" --mac "02:00:00:00:$(printf '%02x:%02x' $((i / 256)) $((i % 256)))" \
        --model bench --hw rev-a --out "$work/bundles/dev-$i.json" >/dev/null
done
echo "registered $N devices in $(( $(now_ms) - t0 )) ms"

"$bin" gateway run > "$work/gateway.log" 2>&1 &
gw_pid=$!
for _ in $(seq 1 100); do grep -q "running\|listening\|HTTPS" "$work/gateway.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
rss_before=$(rss_kib "$gw_pid")
mq_pid=$(pgrep -P "$gw_pid" mosquitto | head -1 || true)
mq_before=$([ -n "$mq_pid" ] && rss_kib "$mq_pid" || echo 0)

"$bin" device swarm --engine agent --bundles "$work/bundles" --state "$work/devices" --until-version 1.1.0 > "$work/swarm.log" 2>&1 &
swarm_pid=$!
for _ in $(seq 1 1200); do grep -q "^online" "$work/swarm.log" && break; sleep 0.1; done
grep "^online" "$work/swarm.log" >/dev/null || { cat "$work/swarm.log"; echo "devices did not come online" >&2; exit 1; }
sleep 2
rss_after=$(rss_kib "$gw_pid")
mq_after=$([ -n "$mq_pid" ] && rss_kib "$mq_pid" || echo 0)
ticks0=$(cpu_ticks "$gw_pid"); sleep 10; ticks1=$(cpu_ticks "$gw_pid")
hz=$(getconf CLK_TCK)

head -c $((1024 * 1024)) /dev/urandom > "$work/image.bin"
t_publish=$(now_ms)
"$bin" vendor publish "$work/image.bin" --model bench --hw rev-a --version 1.1.0 >/dev/null
wait "$swarm_pid"; swarm_pid=""
t_done=$(awk '/^confirmed/ {print $NF}' "$work/swarm.log")

echo "devices:                 $N"
echo "publish → all confirmed: $(( t_done - t_publish )) ms"
echo "gateway RSS:             ${rss_before} KiB idle, ${rss_after} KiB with $N devices connected"
echo "gateway memory/device:   $(( (rss_after - rss_before) * 1024 / N )) bytes"
echo "mosquitto RSS:           ${mq_before} KiB idle, ${mq_after} KiB with $N devices ($(( (mq_after - mq_before) * 1024 / N )) bytes/device)"
echo "gateway CPU while idle:  $(echo "scale=2; 100 * ($ticks1 - $ticks0) / $hz / 10" | bc -l) % of one core"
