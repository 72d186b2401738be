#!/usr/bin/env bash
# Load harness (issue 7): one gateway with its mosquitto, N simulated devices speaking the real
# MQTT/TLS and HTTPS protocols (`fwledger device swarm`, one or more processes), all on loopback.
#
# Phases: connect storm (time until every device is connected and has reported), steady status
# traffic (every device asks for the current notice every --check-interval), then one release of
# --image-size bytes rolled out to all (time from `vendor publish` until every device confirmed it).
# Samples RSS and CPU of the gateway, mosquitto and the swarm processes from /proc every 0.5 s.
# Checks that no device is lost: every swarm reports all its devices confirmed AND the gateway's
# registry shows every device on the new version.
#
#   bash bench/load.sh 10000                  # targets: ≤ 120 s connected + updated with a 1 MiB
#   bash bench/load.sh 1000 --steady 10       # image, 0 devices lost, gateway ≤ 200 MiB RSS
#
# Options: --engine async|agent (default async: `device swarm --engine async`, one tokio task
# per device, flash simulated; agent: the full device agent, two threads per device),
# --procs K (swarm processes; default 1 for the async engine — a device holds one socket, plus
# one while it downloads — and one per 2500 devices for the agent engine, whose devices hold
# about five descriptors each, against `ulimit -n`, 20000 here), --steady SECONDS (default 20),
# --check-interval DUR (default 10s),
# --image-size BYTES (default 1 MiB), --out DIR (default bench/results).
# FWLEDGER_BIN=path skips the cargo build and uses that binary; LOAD_CACHE=DIR keeps the vendor,
# gateway and registered devices there and reuses them on the next run with the same N.
# Writes DIR/load-N.json, DIR/load-N.md, DIR/load-N-samples.csv and (with the bench venv)
# DIR/load-N.png.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
N="${1:-1000}"
shift || true
procs=""; engine=async; steady=20; check_interval=10s; image_size=$((1024 * 1024)); out="$root/bench/results"
while [ $# -gt 0 ]; do
    case "$1" in
        --procs) procs="$2"; shift 2 ;;
        --engine) engine="$2"; shift 2 ;;
        --steady) steady="$2"; shift 2 ;;
        --check-interval) check_interval="$2"; shift 2 ;;
        --image-size) image_size="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$engine" in async|agent) ;; *) echo "--engine async|agent" >&2; exit 2 ;; esac
if [ -z "$procs" ]; then
    if [ "$engine" = async ]; then procs=$(( (N + 14999) / 15000 )); else procs=$(( (N + 2499) / 2500 )); fi
fi
mkdir -p "$out"

if [ -n "${FWLEDGER_BIN:-}" ]; then
    bin="$FWLEDGER_BIN"
else
    cargo build --release -q --locked -p fwledger-cli
    bin="$root/target/release/fwledger"
fi
work=$(mktemp -d /tmp/fwledger-load.XXXXXX)
gw_pid=""; sampler_pid=""; swarm_pids=()
cleanup() {
    [ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null || true
    for p in "${swarm_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${swarm_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -z "$gw_pid" ] || { kill -TERM "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null || true; }
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
hz=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

export FWLEDGER_HOME="$work/home"
cache="${LOAD_CACHE:+$LOAD_CACHE/$N}"
if [ -n "$cache" ] && [ -f "$cache/complete" ]; then
    cp -a "$cache/home" "$cache/bundles" "$work/"
    sed -i "s|$(cat "$cache/work")|$work|g" "$work/home/gateway/mosquitto.conf"
    register_ms=$(cat "$cache/complete")
    echo "reusing the $N registered devices in $cache"
else
    "$bin" vendor init --name bench >/dev/null
    token=$("$bin" vendor token --gateway hub 2>/dev/null)
    "$bin" gateway init --mqtt-port "$(free_port)" --https-port "$(free_port)" --sntp-port "$(free_port)" >/dev/null
    "$bin" gateway subscribe "$token" >/dev/null
    mkdir -p "$work/bundles/all"
    t0=$(now_ms)
    # Registration is set-up, not part of the figures: four at a time, each retried while the
    # registry (SQLite) reports itself locked by a concurrent one.
    seq 1 "$N" | xargs -P 4 -I{} sh -c '
        i={}
        for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            "$0" gateway device add --id "dev-$i" \
                --mac "02:00:00:$(printf "%02x:%02x:%02x" $((i / 65536)) $((i / 256 % 256)) $((i % 256)))" \
                --model bench --hw rev-a --out "$1/all/dev-$i.json" >/dev/null 2>"$1/err-$i" \
                && { rm -f "$1/err-$i"; exit 0; }
            grep -q "locked" "$1/err-$i" || break
            sleep 0.0$((try % 10))
        done
        cat "$1/err-$i" >&2; exit 1' \
        "$bin" "$work/bundles" "$procs"
    register_ms=$(( $(now_ms) - t0 ))
    echo "registered $N devices in $register_ms ms"
    if [ -n "$cache" ]; then
        rm -rf "$cache"; mkdir -p "$cache"; cp -a "$work/home" "$work/bundles" "$cache/"
        echo "$work" > "$cache/work"
        echo "$register_ms" > "$cache/complete"
    fi
fi

# Deal the bundles out to the swarm processes.
for k in $(seq 1 "$procs"); do mkdir -p "$work/bundles/$k"; done
ls "$work/bundles/all" | awk -v procs="$procs" -v dir="$work/bundles" \
    '{printf "%s/all/%s %s/%d/\n", dir, $0, dir, (NR - 1) % procs + 1}' | xargs -n 2 mv

"$bin" gateway run > "$work/gateway.log" 2>&1 &
gw_pid=$!
for _ in $(seq 1 100); do grep -q "running\|listening\|HTTPS" "$work/gateway.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
mq_pid=""
for _ in $(seq 1 50); do mq_pid=$(pgrep -P "$gw_pid" mosquitto | head -1 || true); [ -n "$mq_pid" ] && break; sleep 0.1; done
[ -n "$mq_pid" ] || { cat "$work/gateway.log"; echo "no mosquitto under the gateway" >&2; exit 1; }

# time,phase,pid-role rss_kib cpu_ticks … (one line per sample)
samples="$work/samples.csv"
echo "ms,phase,gateway_rss_kib,gateway_ticks,mosquitto_rss_kib,mosquitto_ticks,swarm_rss_kib,swarm_ticks,loadavg1" > "$samples"
echo idle > "$work/phase"
proc_rss() { awk '/^VmRSS/ {print $2; f=1} END {if (!f) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
sampler() {
    while :; do
        local srss=0 sticks=0 p
        for p in $(cat "$work/swarm.pids" 2>/dev/null); do
            srss=$((srss + $(proc_rss "$p"))); sticks=$((sticks + $(proc_ticks "$p")))
        done
        echo "$(now_ms),$(cat "$work/phase"),$(proc_rss "$gw_pid"),$(proc_ticks "$gw_pid"),$(proc_rss "$mq_pid"),$(proc_ticks "$mq_pid"),$srss,$sticks,$(cut -d' ' -f1 /proc/loadavg)" >> "$samples"
        sleep 0.5
    done
}
sampler &
sampler_pid=$!
sleep 2

echo connect > "$work/phase"
t_start=$(now_ms)
: > "$work/swarm.pids"
for k in $(seq 1 "$procs"); do
    "$bin" device swarm --engine "$engine" --bundles "$work/bundles/$k" --state "$work/devices" --until-version 1.1.0 \
        --check-interval "$check_interval" --progress --timeout 15m > "$work/swarm-$k.log" 2>&1 &
    swarm_pids+=($!)
    echo $! >> "$work/swarm.pids"
done
online_ms=0
for _ in $(seq 1 6000); do
    n=$(cat "$work"/swarm-*.log 2>/dev/null | grep -c "^online" || true)
    [ "$n" -eq "$procs" ] && break
    for p in "${swarm_pids[@]}"; do kill -0 "$p" 2>/dev/null || { tail -20 "$work"/swarm-*.log; echo "a swarm exited before all were online" >&2; exit 1; }; done
    sleep 0.1
done
for k in $(seq 1 "$procs"); do
    t=$(awk '/^online/ {print $NF}' "$work/swarm-$k.log")
    [ -n "$t" ] || { tail -20 "$work/swarm-$k.log"; echo "devices did not come online" >&2; exit 1; }
    [ "$t" -gt "$online_ms" ] && online_ms=$t
done
connect_ms=$((online_ms - t_start))
echo "all $N connected in $connect_ms ms"

echo steady > "$work/phase"
sleep "$steady"

head -c "$image_size" /dev/urandom > "$work/image.bin"
echo rollout > "$work/phase"
t_publish=$(now_ms)
"$bin" vendor publish "$work/image.bin" --model bench --hw rev-a --version 1.1.0 >/dev/null
failed_swarms=0
for p in "${swarm_pids[@]}"; do wait "$p" || failed_swarms=$((failed_swarms + 1)); done
swarm_pids=()
t_end=$(now_ms)
echo done > "$work/phase"

done_ms=0; confirmed=0
for k in $(seq 1 "$procs"); do
    line=$(grep "^confirmed" "$work/swarm-$k.log" || true)
    if [ -n "$line" ]; then
        t=${line##* }; [ "$t" -gt "$done_ms" ] && done_ms=$t
        c=$(echo "$line" | awk '{split($3, a, "/"); print a[1]}'); confirmed=$((confirmed + c))
    fi
done
failures=$(cat "$work"/swarm-*.log | awk '/^failures/ {s += $2} END {print s + 0}')
# The gateway records each confirmation when it processes the status report: wait (≤ 60 s) until
# its registry shows every device on the new version.
registry_updated=0
for _ in $(seq 1 120); do
    registry_updated=$("$bin" gateway status --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for x in d["devices"] if x.get("version") == "1.1.0"))' || echo 0)
    [ "$registry_updated" -ge "$N" ] && break
    sleep 0.5
done
registry_ms=$(( $(now_ms) - t_publish ))
kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
rollout_ms=$(( done_ms > 0 ? done_ms - t_publish : t_end - t_publish ))
lost=$((N - registry_updated))
# Device messages the gateway dropped because its queue was full (before / after the publish).
dropped=$(awk -F'[][]' -v t=$((t_publish / 1000)) '/the gateway is overloaded/ {if ($2 < t) b++; else a++} END {print b + 0, a + 0}' "$work/gateway.log")

python3 - "$samples" "$hz" "$N" "$procs" "$register_ms" "$connect_ms" "$rollout_ms" "$steady" "$check_interval" \
    "$image_size" "$confirmed" "$registry_updated" "$lost" "$failed_swarms" "$failures" "$load_before" "$load_after" \
    "$out" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$registry_ms" "$engine" $dropped <<'EOF'
import csv, json, sys
(samples, hz, n, procs, register_ms, connect_ms, rollout_ms, steady, check_interval, image_size,
 confirmed, updated, lost, failed_swarms, failures, load_before, load_after, out, cores, when, registry_ms,
 engine, dropped_before, dropped_after) = sys.argv[1:]
hz = int(hz); n = int(n)
rows = list(csv.DictReader(open(samples)))
roles = ["gateway", "mosquitto", "swarm"]
def phase_stats(phase_names):
    sel = [r for r in rows if r["phase"] in phase_names]
    res = {}
    for role in roles:
        rss = [int(r[f"{role}_rss_kib"]) for r in sel]
        cpu = None
        if len(sel) >= 2:
            dt = (int(sel[-1]["ms"]) - int(sel[0]["ms"])) / 1000
            dticks = int(sel[-1][f"{role}_ticks"]) - int(sel[0][f"{role}_ticks"])
            cpu = round(100 * dticks / hz / dt, 1) if dt > 0 else None
        peak_cpu = 0.0
        for a, b in zip(sel, sel[1:]):
            dt = (int(b["ms"]) - int(a["ms"])) / 1000
            if dt > 0:
                peak_cpu = max(peak_cpu, 100 * (int(b[f"{role}_ticks"]) - int(a[f"{role}_ticks"])) / hz / dt)
        res[role] = {
            "peak_rss_mib": round(max(rss) / 1024, 1) if rss else None,
            "mean_rss_mib": round(sum(rss) / len(rss) / 1024, 1) if rss else None,
            "cpu_percent_of_one_core": cpu,
            "peak_cpu_percent_0_5s": round(peak_cpu, 1),
        }
    return res
result = {
    "when": when, "cores": int(cores), "loadavg_before": load_before, "loadavg_after": load_after,
    "devices": n, "engine": engine, "swarm_processes": int(procs), "image_bytes": int(image_size),
    "steady_seconds": int(steady), "check_interval": check_interval,
    "register_ms": int(register_ms),
    "connect_storm_ms": int(connect_ms),
    "publish_to_all_confirmed_ms": int(rollout_ms),
    "connected_and_updated_ms": int(connect_ms) + int(rollout_ms),
    "publish_to_all_confirmed_in_gateway_registry_ms": int(registry_ms),
    "confirmed_by_swarm": int(confirmed), "updated_in_gateway_registry": int(updated),
    "devices_lost": int(lost), "swarm_processes_failed": int(failed_swarms),
    "device_update_failures": int(failures),
    "gateway_dropped_messages_before_publish": int(dropped_before),
    "gateway_dropped_messages_after_publish": int(dropped_after),
    "peak_loadavg1": max((float(r["loadavg1"]) for r in rows if r.get("loadavg1")), default=None),
    "phases": {p: phase_stats([p]) for p in ["idle", "connect", "steady", "rollout"]},
    "overall": phase_stats(["idle", "connect", "steady", "rollout", "done"]),
}
json.dump(result, open(f"{out}/load-{n}.json", "w"), indent=2)
g = result["overall"]
md = [f"# Load: {n} devices ({when})", "",
      f"Machine: {cores} cores, load average {load_before} before, {load_after} after "
      "(shared with other builds: figures are noisy).", "",
      "| measure | value |", "| --- | --- |",
      f"| devices | {n} in {procs} swarm process(es), engine {engine} |",
      f"| connect storm: start → all connected | {int(connect_ms) / 1000:.2f} s |",
      f"| publish {int(image_size)} B → all confirmed | {int(rollout_ms) / 1000:.2f} s |",
      f"| connected + updated | {(int(connect_ms) + int(rollout_ms)) / 1000:.2f} s |",
      f"| confirmed (swarm) / updated (gateway registry) | {confirmed} / {updated} |",
      f"| publish → gateway registry shows all updated | {int(registry_ms) / 1000:.2f} s |",
      f"| devices lost | {lost} |",
      f"| failed update attempts (retried) | {failures} |",
      f"| device messages the gateway dropped (overloaded): before / after publish | {dropped_before} / {dropped_after} |",
      f"| peak 1-min load average during the run | {result['peak_loadavg1']} |",
      f"| steady phase | {steady} s, each device checks every {check_interval} |", "",
      "| process | peak RSS | steady RSS | CPU connect | CPU steady | CPU rollout | peak CPU (0.5 s) |",
      "| --- | --- | --- | --- | --- | --- | --- |"]
for role in roles:
    ph = result["phases"]
    md.append(f"| {role} | {g[role]['peak_rss_mib']} MiB | {ph['steady'][role]['mean_rss_mib']} MiB | "
              f"{ph['connect'][role]['cpu_percent_of_one_core']} % | {ph['steady'][role]['cpu_percent_of_one_core']} % | "
              f"{ph['rollout'][role]['cpu_percent_of_one_core']} % | {g[role]['peak_cpu_percent_0_5s']} % |")
md.append("")
md.append("CPU is % of one core over the phase (200 % = both cores).")
open(f"{out}/load-{n}.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
cp "$samples" "$out/load-$N-samples.csv"
for k in $(seq 1 "$procs"); do awk -v k="$k" '/^progress/ {print k, $0}' "$work/swarm-$k.log"; done \
    > "$out/load-$N-progress.txt"
py="$root/target/bench-venv/bin/python"
if [ -x "$py" ] && "$py" -c 'import matplotlib' 2>/dev/null; then
    "$py" bench/plot_load.py "$out/load-$N-samples.csv" "$out/load-$N-progress.txt" "$t_start" "$t_publish" "$out/load-$N.png" "$N"
    echo "plot: $out/load-$N.png"
else
    echo "plot skipped: no matplotlib (python3 -m venv target/bench-venv && target/bench-venv/bin/pip install matplotlib)"
fi
[ "$lost" -eq 0 ] && [ "$failed_swarms" -eq 0 ] || { echo "FAILED: $lost devices lost, $failed_swarms swarm processes failed" >&2; tail -5 "$work"/swarm-*.log >&2; exit 1; }
