#!/usr/bin/env python3
"""The C device program against the REAL gateway (issue 4, "End to end").

    real_gateway.py --device EXE --fwledger CLI --work DIR

One home holds a vendor and a gateway (`fwledger gateway init/subscribe/device add/run`: its own
CA, mosquitto with TLS client certificates and the per-device ACL, HTTPS downloads). The C device
runs from the bundle `gateway device add` wrote. The vendor publishes 1.1.0; the C device must
verify, install, re-exec, confirm, and the gateway's registry must show the new version from the
device's own report. Bounded in time; everything on 127.0.0.1; processes stopped at the end.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ID = "c-lamp-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", required=True)
    ap.add_argument("--fwledger", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    work = Path(args.work)
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    home = work / "home"

    def cli(*a, check=True):
        r = subprocess.run([args.fwledger, "--home", str(home), *a], capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise SystemExit(f"fwledger {' '.join(a)} failed: {r.stderr}")
        return r.stdout

    cli("vendor", "init", "--name", "acme")
    token = cli("vendor", "token", "--gateway", "hub").strip()
    https = free_port()
    cli("gateway", "init", "--mqtt-port", str(free_port()), "--https-port", str(https),
        "--sntp-port", str(free_port()))
    cli("gateway", "subscribe", token)
    bundle = work / f"{ID}.json"
    cli("gateway", "device", "add", "--id", ID, "--mac", "02:00:00:00:0c:01", "--model", "lamp",
        "--hw", "rev-b", "--out", str(bundle))

    procs = []
    try:
        gw_log = open(work / "gateway.log", "w")
        gateway = subprocess.Popen([args.fwledger, "--home", str(home), "gateway", "run"],
                                   stdout=gw_log, stderr=subprocess.STDOUT)
        procs.append(gateway)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", https), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or gateway.poll() is not None:
                    raise SystemExit("the gateway did not start: "
                                     + (work / "gateway.log").read_text())
                time.sleep(0.1)

        device = subprocess.Popen(
            [args.device, "--bundle", str(bundle), "--state", str(work / "state"),
             "--factory-version", "1.0.0", "--check-interval", "600", "--retry-after", "2"],
            stdout=subprocess.PIPE, stderr=open(work / "device.log", "w"), text=True)
        procs.append(device)
        reports = []
        lock = threading.Lock()

        def read():
            for line in device.stdout:
                # Each report is printed as "DEVICE_ID {json}".
                line = line.strip().partition(" ")[2]
                if line.startswith("{"):
                    try:
                        with lock:
                            reports.append(json.loads(line))
                    except ValueError:
                        pass

        threading.Thread(target=read, daemon=True).start()

        def wait_report(what, pred, limit=60):
            deadline = time.time() + limit
            while time.time() < deadline:
                with lock:
                    for r in reports:
                        if pred(r):
                            return r
                time.sleep(0.05)
            raise SystemExit(f"timed out waiting for {what}; reports: {reports}\n"
                             + (work / "device.log").read_text()[-3000:])

        wait_report("the device online on 1.0.0",
                    lambda r: r.get("state") == "idle" and r.get("version") == "1.0.0")

        image = work / "lamp-1.1.0.bin"
        image.write_bytes(os.urandom(1024 * 1024))
        cli("vendor", "publish", str(image), "--model", "lamp", "--hw", "rev-b", "--version",
            "1.1.0", "--security-version", "1")
        confirmed = wait_report("confirmed 1.1.0",
                                lambda r: r.get("state") == "confirmed" and r.get("version") == "1.1.0")
        assert confirmed.get("security_version") == 1, confirmed

        # The gateway learned it from the device's own report over MQTT.
        deadline = time.time() + 30
        while True:
            devices = json.loads(cli("gateway", "device", "list", "--json"))
            entry = next((d for d in devices if d.get("id") == ID), None)
            if entry and entry.get("version") == "1.1.0":
                break
            if time.time() > deadline:
                raise SystemExit(f"the gateway never saw {ID} on 1.1.0: {entry}")
            time.sleep(0.2)
        print(f"ok: {ID} confirmed 1.1.0 through the real gateway")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    sys.exit(main())
