"""The type stubs match the native module (mypy's stubtest), and typed code using the API
(the example script, these tests) type-checks against them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

mypy = pytest.importorskip("mypy", reason="mypy is installed by bindings/python/scripts/venv.sh")


def _run(*args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, cwd=REPO
    )


def test_stubs_match_runtime() -> None:
    done = _run("mypy.stubtest", "fwledger")
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_and_tests_type_check() -> None:
    done = _run(
        "mypy",
        "--no-incremental",
        "--strict",
        "examples/vendor_release.py",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run("mypy", "--no-incremental", "bindings/python/tests")
    assert done.returncode == 0, done.stdout + done.stderr
