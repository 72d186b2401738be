"""Shared fixtures: the repository's test vectors, temporary homes, vendors and images."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Callable, Dict

import pytest

import fwledger

REPO = pathlib.Path(__file__).resolve().parents[3]
VECTORS = REPO / "tests" / "vectors"


@pytest.fixture(scope="session")
def proto_vectors() -> Dict[str, Any]:
    with open(VECTORS / "proto.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def cid_vectors() -> Dict[str, Any]:
    with open(VECTORS / "cid.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Every test gets its own $FWLEDGER_HOME, so a forgotten home= never touches ~/.local."""
    home = tmp_path / "default-home"
    monkeypatch.setenv("FWLEDGER_HOME", str(home))
    return home


@pytest.fixture
def home(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "home"


@pytest.fixture
def vendor(home: pathlib.Path) -> fwledger.Vendor:
    return fwledger.Vendor.init(home, "acme")


@pytest.fixture
def make_image(tmp_path: pathlib.Path) -> Callable[..., pathlib.Path]:
    """Writes a pseudo-random image of `size` bytes and returns its path."""

    def make(name: str = "image.bin", size: int = 300_000) -> pathlib.Path:
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        return path

    return make
