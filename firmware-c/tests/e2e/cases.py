#!/usr/bin/env python3
"""End-to-end cases of the C device program against the gateway stand-in (standin.py).

    cases.py CASE --device EXE --releases DIR --work DIR

Each case starts its own broker, HTTPS server and device (fresh state, factory version 1.0.0),
publishes a retained notice like the gateway does, and checks the status reports the device
publishes on fwledger/v1/dev/{id}/status (collected with mosquitto_sub) and its state files.
Exit status 0 = pass. Bounded: every wait has a timeout; all sockets are on 127.0.0.1.
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin  # noqa: E402

ID = "lamp-c-1"
FAST = ["--retry-after", "120", "--check-interval", "600"]


class Ctx:
    def __init__(self, args):
        self.exe = args.device
        self.rel = json.loads((Path(args.releases) / "releases.json").read_text())
        self.work = Path(args.work)
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.gw = None
        self.devices = []

    def release(self, name):
        r = self.rel["releases"][name]
        return r, Path(r["manifest"]).read_bytes(), Path(r["image"]).read_bytes()

    def gateway(self):
        self.gw = standin.Gateway(self.work / "gateway")
        return self.gw

    def device(self, *extra, vendor_keys=None, env=None, device_id=ID):
        bundle = self.gw.bundle(device_id, vendor_keys or [self.rel["vendor_key"]],
                                self.work / f"{device_id}.bundle.json")
        d = standin.Device(self.exe, bundle, self.work / f"{device_id}.state", self.work,
                           *FAST, *extra, env=env)
        self.devices.append(d)
        return d

    def publish(self, name, serve=None, mode="normal", manifest=None, device_id=ID):
        """Serves the release image (or `serve` bytes) and publishes its notice."""
        r, signed, img = self.release(name)
        url = self.gw.files.add(name, serve if serve is not None else img, r["sha256"], mode)
        self.gw.notify(device_id, standin.notice(manifest or signed, url, int(time.time())))
        return r

    def close(self):
        for d in self.devices:
            d.stop()
        if self.gw:
            self.gw.close()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def assert_refused(c, dev, check, version="1.0.0"):
    failed = c.gw.wait_state(ID, "failed")
    reason = failed.get("reason", "")
    expect(reason.startswith(check + ": "), f"expected a {check} refusal, got {reason!r}")
    expect(failed["version"] == version, f"running version changed: {failed}")
    rec = dev.record()
    expect(rec["report"]["state"] == "failed", rec)
    expect(dev.proc.poll() is None, "the device stopped")
    expect(dev.runs == 1 and dev.proc.pid == dev.pid, "the device restarted")
    return failed


# ------------------------------------------------------------------------------------ cases

def good_release(c):
    """verify, install into slot B, re-exec, self-check, confirm, report the new version."""
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    r = c.publish("good")
    c.gw.wait_state(ID, "downloading")
    c.gw.wait_state(ID, "installing")
    confirmed = c.gw.wait_state(ID, "confirmed")
    expect(confirmed["version"] == "1.1.0", confirmed)
    expect(confirmed["security_version"] == 1, confirmed)
    expect(confirmed["sha256"] == r["sha256"], confirmed)
    expect(dev.proc.poll() is None and dev.proc.pid == dev.pid, "not the same process (re-exec)")
    boots = (c.work / "device-1.err").read_text().count("restarting (re-exec)")
    expect(boots == 1, f"expected one re-exec, saw {boots}")
    rec = dev.record()
    expect(rec["active"] == "b" and rec["confirmed"] and rec["pending"] is None, rec)
    expect(rec["highest_security_version"] == 1, rec)
    expect((dev.state / "slot_b.bin").read_bytes() == Path(r["image"]).read_bytes(), "slot B")
    boot = (dev.state / "bootloader").read_text()
    expect("active=b" in boot and "trial=0" in boot, boot)
    # The retained notice comes again on every connect: it must not install twice.
    time.sleep(1)
    expect(sum(1 for s in c.gw.statuses(ID) if s["state"] == "downloading") == 1,
           "downloaded twice")


def forged_notice(c):
    """A notice whose manifest chains to another vendor root (a compromised gateway)."""
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    c.publish("forged")
    assert_refused(c, dev, "release-key-certificate")
    expect(not c.gw.files.requests(), "downloaded a forged release")


def altered_signature(c):
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    _, signed, _ = c.release("good")
    altered = bytearray(signed)
    altered[-1] ^= 1
    c.publish("good", manifest=bytes(altered))
    assert_refused(c, dev, "manifest-signature")
    expect(not c.gw.files.requests(), "downloaded after a bad signature")


def altered_image(c):
    """A malicious mirror serves other bytes of the same length."""
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    _, _, img = c.release("good")
    other = bytearray(img)
    other[len(other) // 2] ^= 0xFF
    c.publish("good", serve=bytes(other))
    failed = assert_refused(c, dev, "image-sha256")
    expect(failed.get("release") == "1.1.0", failed)
    rec = dev.record()
    expect(rec["active"] == "a" and rec["slots"]["b"] is None, rec)


def endless_image(c):
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    _, _, img = c.release("good")
    c.publish("good", serve=img + b"\0" * 40_000)
    assert_refused(c, dev, "image-size")


def wrong_model(c):
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    c.publish("kettle")
    assert_refused(c, dev, "model")
    expect(not c.gw.files.requests(), "downloaded a release for another model")


def older_security_version(c):
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    c.publish("sv_high")
    c.gw.wait_status(ID, lambda s: s["state"] == "confirmed" and s["version"] == "1.3.0")
    skip = len(c.gw.statuses(ID))
    # Newer version, lower security version: a rollback attack.
    c.publish("sv_low")
    failed = c.gw.wait_state(ID, "failed", skip)
    expect(failed["reason"].startswith("security-version: "), failed)
    expect((failed["version"], failed["security_version"]) == ("1.3.0", 2), failed)
    rec = dev.record()
    expect(rec["active"] == "b" and rec["highest_security_version"] == 2, rec)


def self_check_rollback(c):
    c.gateway()
    dev = c.device()
    c.gw.wait_state(ID, "idle")
    c.publish("selfcheck")
    c.gw.wait_state(ID, "installing")
    back = c.gw.wait_state(ID, "rolled_back")
    expect(back["reason"].startswith("self-check: "), back)
    expect(back["version"] == "1.0.0" and back.get("release") == "1.5.0", back)
    rec = dev.record()
    expect(rec["active"] == "a" and rec["confirmed"] and rec["slots"]["b"] is None, rec)
    boot = (dev.state / "bootloader").read_text()
    expect("active=a" in boot, boot)
    expect(dev.proc.poll() is None and dev.proc.pid == dev.pid, "device stopped")
    # Not retried: the retained notice stays, the device stays on 1.0.0.
    time.sleep(1.5)
    expect(c.gw.statuses(ID)[-1]["state"] == "rolled_back", c.gw.statuses(ID)[-1])


def resume_range(c):
    """The first response is cut: the device resumes with a Range request and installs."""
    c.gateway()
    c.device()
    c.gw.wait_state(ID, "idle")
    c.publish("big", mode="cut_once:100000")
    confirmed = c.gw.wait_state(ID, "confirmed")
    expect(confirmed["version"] == "1.6.0", confirmed)
    ranges = [r["range"] for r in c.gw.files.requests() if r["range"]]
    expect(ranges and ranges[0].startswith("bytes=") and int(ranges[0][6:].rstrip("-")) > 0,
           f"no resuming Range request: {c.gw.files.requests()}")


def stalled_download(c):
    c.gateway()
    dev = c.device("--stall-timeout", "2")
    c.gw.wait_state(ID, "idle")
    c.publish("good", mode="stall")
    failed = c.gw.wait_state(ID, "failed", timeout=30)
    expect(failed["reason"].startswith("download-stalled: "), failed)
    expect(failed["version"] == "1.0.0", failed)
    expect(dev.proc.poll() is None, "device stopped")


def boot_attempts(c):
    """The new image 'crashes' before confirming, on every boot: after the limit the device
    goes back to slot A and reports boot-attempts."""
    c.gateway()
    dev = c.device("--max-boot-attempts", "2", env={"FWLEDGER_C_CRASH_AT": "self-check"})
    c.gw.wait_state(ID, "idle")
    c.publish("crashy")
    crashes, deadline = 0, time.time() + 90
    while True:  # the harness power-cycles the device after each crash
        expect(time.time() < deadline, "never rolled back:\n" + dev.logs())
        code = dev.proc.poll()
        if code is not None:
            expect(code == 86, f"expected the simulated crash, exit {code}\n{dev.logs()}")
            crashes += 1
            dev.start()
            continue
        if crashes > 0 and "active=a" in (dev.state / "bootloader").read_text():
            break
        time.sleep(0.05)
    expect(crashes == 2, f"{crashes} crashed boots, expected 2 (limit 2)")
    back = c.gw.wait_state(ID, "rolled_back")
    expect(back["reason"].startswith("boot-attempts: "), back)
    expect(back["version"] == "1.0.0" and back.get("release") == "1.7.0", back)


def bad_bundle(c):
    c.work.mkdir(exist_ok=True)
    bundle = c.work / "bad.json"
    bundle.write_text('{"format": 1, "device_id": "x"}')
    r = subprocess.run([c.exe, "--bundle", str(bundle), "--state", str(c.work / "s")],
                       capture_output=True, text=True, timeout=30)
    expect(r.returncode == 1, r)
    expect("provisioning bundle: missing field" in r.stderr, r.stderr)
    r = subprocess.run([c.exe, "--state", str(c.work / "s")], capture_output=True, text=True,
                       timeout=30)
    expect(r.returncode == 2 and "usage:" in r.stderr, r)


def config_mode(c):
    """--configure: a loopback page to upload the bundle and enter Wi-Fi/MQTT settings, and a
    QR code of the device id + page URL on the terminal."""
    c.gateway()
    bundle_src = c.gw.bundle("lamp-cfg", [c.rel["vendor_key"]], c.work / "source.json")
    target = c.work / "device" / "bundle.json"
    target.parent.mkdir()
    port_file = c.work / "port"
    out = open(c.work / "config.out", "w")
    proc = subprocess.Popen([c.exe, "--configure", "--bundle", str(target), "--device-id",
                             "lamp-cfg", "--config-port", "0", "--config-port-file",
                             str(port_file), "--config-timeout", "60"],
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 10
        while not (port_file.exists() and port_file.read_text().strip()):
            expect(time.time() < deadline and proc.poll() is None, "no configuration server")
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port_file.read_text().strip()}"
        page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        expect("fwledger device setup" in page and "lamp-cfg" in page, page)

        def post(fields, host=None):
            body = urllib.parse.urlencode(fields).encode()
            req = urllib.request.Request(base + "/configure", data=body, method="POST")
            if host:
                req.add_header("Host", host)
            try:
                return urllib.request.urlopen(req, timeout=10).status, ""
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        code, text = post({"bundle": '{"format": 1}'})
        expect(code == 400 and "missing field" in text, (code, text))
        code, _ = post({"bundle": bundle_src.read_text()}, host="evil.example:80")
        expect(code == 403, code)
        expect(not target.exists(), "saved a refused configuration")
        code, _ = post({"bundle": bundle_src.read_text(), "wifi_ssid": "home net",
                        "wifi_password": "pa&ss=word", "mqtt_url": "mqtts://127.0.0.1:8883"})
        expect(code == 200, code)
        expect(proc.wait(10) == 0, "configuration mode did not end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
    saved = json.loads(target.read_text())
    expect(saved["device_id"] == "lamp-cfg" and saved["wifi_ssid"] == "home net", saved)
    expect(saved["wifi_password"] == "pa&ss=word", saved)
    expect(saved["mqtt_url"] == "mqtts://127.0.0.1:8883", saved)
    expect((target.stat().st_mode & 0o777) == 0o600, oct(target.stat().st_mode))
    text = (c.work / "config.out").read_text()
    expect("http://127.0.0.1:" in text and "\u2588" in text, "no QR code:\n" + text)


CASES = {f.__name__: f for f in [
    good_release, forged_notice, altered_signature, altered_image, endless_image, wrong_model,
    older_security_version, self_check_rollback, resume_range, stalled_download, boot_attempts,
    bad_bundle, config_mode]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--device", required=True)
    ap.add_argument("--releases", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    c = Ctx(args)
    try:
        CASES[args.case](c)
        # A clean exit on SIGTERM (under ASan: also no leak and no UB report on the way out).
        for d in c.devices:
            code = d.stop()
            expect(code == 0, f"the device exited with {code} on SIGTERM")
        print(f"{args.case}: passed")
        return 0
    except Exception:  # noqa: BLE001 - report everything the case saw
        traceback.print_exc()
        for d in c.devices:
            print(d.logs()[-6000:], file=sys.stderr)
        if c.gw:
            print("--- status reports\n" + c.gw.status_file.read_text()[-4000:], file=sys.stderr)
            print("--- HTTP requests\n" + json.dumps(c.gw.files.requests()), file=sys.stderr)
        return 1
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(main())
