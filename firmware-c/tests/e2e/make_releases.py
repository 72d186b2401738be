#!/usr/bin/env python3
"""Makes the signed releases the end-to-end cases use, with the real `fwledger` CLI.

    make_releases.py --fwledger PATH --out DIR

Writes DIR/releases.json: {"vendor_key": hex, "mallory_key": hex, "releases": {name: {"manifest":
path, "image": path, "version": v, "security_version": n, "model": m}}}. Two vendors: "acme" (the
one devices trust) and "mallory" (a forger: its manifests chain to another root key).
"""
import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

MARKER = b"FWLEDGER-SELFCHECK-FAIL"


def image(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(size))


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fwledger", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    cli = args.fwledger

    def vendor(name):
        home = out / name
        run([cli, "--home", str(home), "vendor", "init", "--name", name])
        key = run([cli, "--home", str(home), "vendor", "key"]).strip()
        return home, key

    acme, acme_key = vendor("acme")
    mallory, mallory_key = vendor("mallory")

    selfcheck = bytearray(image(5, 60_000))
    selfcheck[4090:4090 + len(MARKER)] = MARKER  # across the agent's 4 KiB read boundary
    plan = [
        # name, vendor home, model, version, security_version, image bytes
        ("good", acme, "lamp", "1.1.0", 1, image(1, 50_000)),
        ("sv_high", acme, "lamp", "1.3.0", 2, image(2, 20_000)),
        ("sv_low", acme, "lamp", "1.4.0", 1, image(3, 20_000)),
        ("selfcheck", acme, "lamp", "1.5.0", 0, bytes(selfcheck)),
        ("big", acme, "lamp", "1.6.0", 0, image(6, 300_000)),
        ("crashy", acme, "lamp", "1.7.0", 0, image(7, 30_000)),
        ("kettle", acme, "kettle", "1.1.0", 0, image(8, 10_000)),
        ("forged", mallory, "lamp", "1.1.0", 0, image(9, 50_000)),
    ]
    releases = {}
    for name, home, model, version, sv, data in plan:
        path = out / "images" / f"{name}.bin"
        path.write_bytes(data)
        published = json.loads(run([
            cli, "--home", str(home), "vendor", "publish", str(path), "--model", model,
            "--hw", "rev-b", "--version", version, "--security-version", str(sv), "--json",
        ]))
        manifest = Path(published["manifest_path"])
        if not manifest.is_absolute():
            manifest = Path.cwd() / manifest
        releases[name] = {
            "manifest": str(manifest),
            "image": str(path),
            "version": version,
            "security_version": sv,
            "model": model,
            "sha256": published["sha256"],
        }
    (out / "releases.json").write_text(json.dumps(
        {"vendor_key": acme_key, "mallory_key": mallory_key, "releases": releases}, indent=2))
    print(f"{len(releases)} releases in {out}")


if __name__ == "__main__":
    main()
