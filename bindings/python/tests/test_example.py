"""examples/vendor_release.py, run as a CI pipeline would run it."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Callable, List

import fwledger

from conftest import REPO

SCRIPT = REPO / "examples" / "vendor_release.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_publishes_and_prints_json(
    home: pathlib.Path, make_image: Callable[..., pathlib.Path], tmp_path: pathlib.Path
) -> None:
    image = make_image("lamp.bin", 1_500_000)
    notes = tmp_path / "NOTES.md"
    notes.write_text("Fixes the dimmer flicker.\n")
    common: List[str] = [str(image), "--model", "lamp", "--hw", "rev-b,rev-c",
                         "--home", str(home)]
    done = run(*common, "--version", "1.1.0", "--security-version", "2", "--init", "Acme",
               "--notes-file", str(notes), "--expires", "180d", "--heartbeat", "1h")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("seq", "version", "cid", "sha256", "size", "manifest_path", "vendor_key"):
        assert key in result
    assert result["version"] == "1.1.0" and result["security_version"] == 2
    assert result["heartbeat_seq"] == result["seq"] + 1
    vendor = fwledger.Vendor.open(home)
    assert result["vendor_key"] == vendor.public_key
    fwledger.verify(manifest=result["manifest_path"], image=image, vendor_key=vendor.public_key,
                    model="lamp", hw="rev-c")
    entries = vendor.history()
    assert entries[0]["hardware"] == ["rev-b", "rev-c"]

    # A re-run of the same pipeline fails loudly, or is skipped on request.
    again = run(*common, "--version", "1.1.0")
    assert again.returncode == 1
    assert "already-published" in again.stderr
    skipped = run(*common, "--version", "1.1.0", "--skip-existing")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["skipped"] is True


def test_errors_exit_non_zero(home: pathlib.Path, make_image: Callable[..., pathlib.Path],
                              tmp_path: pathlib.Path) -> None:
    image = make_image()
    no_vendor = run(str(image), "--model", "lamp", "--hw", "rev-b", "--version", "1.0.0",
                    "--home", str(home))
    assert no_vendor.returncode == 1
    assert "not-initialized" in no_vendor.stderr and no_vendor.stdout == ""

    missing = run(str(tmp_path / "missing.bin"), "--model", "lamp", "--hw", "rev-b",
                  "--version", "1.0.0", "--home", str(home), "--init", "Acme")
    assert missing.returncode == 1
    assert "missing.bin" in missing.stderr

    bad_version = run(str(image), "--model", "lamp", "--hw", "rev-b", "--version", "v1",
                      "--home", str(home))
    assert bad_version.returncode == 1

    usage = run(str(image), "--model", "lamp")
    assert usage.returncode == 2
