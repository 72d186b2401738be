"""The shared protocol and CID test vectors (tests/vectors/*.json) through the Python API."""

from __future__ import annotations

import pathlib
import struct
from typing import Any, Dict, List

import pytest

import fwledger

from conftest import VECTORS

# ---------------------------------------------------------------------------------------------
# proto.json
# ---------------------------------------------------------------------------------------------


def _load(name: str) -> Dict[str, Any]:
    import json

    with open(VECTORS / name, encoding="utf-8") as f:
        return json.load(f)


PROTO = _load("proto.json")
NOW = PROTO["times"]["now"]


def _key(name: str) -> str:
    return next(k["public"] for k in PROTO["keys"] if k["name"] == name)


ROOT = _key("acme/root")


def _manifest(name: str) -> Dict[str, Any]:
    return next(m for m in PROTO["manifests"] if m["name"] == name)


def _token(name: str) -> str:
    return next(t["text"] for t in PROTO["tokens"] if t["name"] == name)


def _image() -> bytes:
    recipe = PROTO["image"]
    assert recipe["recipe"] == "byte i = (i * 7 + 3) mod 256, for i in 0 .. size"
    return bytes((i * 7 + 3) % 256 for i in range(recipe["size"]))


IMAGE = _image()
MESSAGES = [bytes.fromhex(m["wire"]) for m in PROTO["channel"]["messages"]]


def _negatives(kind: str) -> List[Dict[str, Any]]:
    return [n for n in PROTO["negative"] if n["kind"] == kind]


def _ids(vectors: List[Dict[str, Any]]) -> List[str]:
    return [v["name"] for v in vectors]


def test_image_recipe_matches_vector() -> None:
    import hashlib

    assert hashlib.sha256(IMAGE).hexdigest() == PROTO["image"]["sha256"]


@pytest.mark.parametrize("vector", PROTO["manifests"], ids=_ids(PROTO["manifests"]))
def test_signed_manifest_verifies(vector: Dict[str, Any], tmp_path: pathlib.Path) -> None:
    # As bytes and as files: both inputs are accepted.
    manifest_file = tmp_path / "m.cose"
    manifest_file.write_bytes(bytes.fromhex(vector["signed"]))
    image_file = tmp_path / "image.bin"
    image_file.write_bytes(IMAGE)
    for manifest, image in ((bytes.fromhex(vector["signed"]), IMAGE), (manifest_file, image_file)):
        got = fwledger.verify(manifest=manifest, image=image, vendor_key=ROOT, now=NOW)
        fields = vector["fields"]
        for key in ("vendor", "vendor_key", "model", "hardware", "version", "security_version",
                    "size", "sha256", "cid", "issued", "expires", "prerequisite", "notes"):
            assert got[key] == fields[key], key


@pytest.mark.parametrize("vector", _negatives("manifest"), ids=_ids(_negatives("manifest")))
def test_negative_manifest(vector: Dict[str, Any]) -> None:
    with pytest.raises(fwledger.VerificationError) as info:
        fwledger.verify(
            manifest=bytes.fromhex(vector["input"]),
            image=IMAGE,
            vendor_key=ROOT,
            now=NOW,
            min_key_generation=vector.get("min_key_generation", 0),
        )
    assert info.value.reason == vector["expected"]
    assert str(info.value)


@pytest.mark.parametrize("vector", _negatives("image"), ids=_ids(_negatives("image")))
def test_negative_image(vector: Dict[str, Any]) -> None:
    with pytest.raises(fwledger.VerificationError) as info:
        fwledger.verify(
            manifest=bytes.fromhex(_manifest(vector["manifest"])["signed"]),
            image=bytes.fromhex(vector["input"]),
            vendor_key=ROOT,
            now=NOW,
        )
    assert info.value.reason == vector["expected"]


@pytest.mark.parametrize("vector", _negatives("message"), ids=_ids(_negatives("message")))
def test_negative_message(vector: Dict[str, Any]) -> None:
    follower = fwledger.Follower(_token(vector["token"]))
    for wire in MESSAGES[: vector["after"]]:
        follower.ingest(wire, now=NOW)
    before = follower.next_seq
    with pytest.raises(fwledger.VerificationError) as info:
        follower.ingest(bytes.fromhex(vector["input"]), now=NOW)
    assert info.value.reason == vector["expected"]
    assert info.value.advanced == (follower.next_seq > before)


@pytest.mark.parametrize("vector", _negatives("token"), ids=_ids(_negatives("token")))
def test_negative_token(vector: Dict[str, Any]) -> None:
    text = bytes.fromhex(vector["input"]).decode()
    with pytest.raises(fwledger.TokenError) as info:
        fwledger.parse_token(text, vendor_key=vector.get("pinned_vendor"))
    assert info.value.reason == vector["expected"]
    # The same token refused by a follower and by read_channel.
    with pytest.raises(fwledger.TokenError):
        fwledger.Follower(text, vendor_key=vector.get("pinned_vendor"))


@pytest.mark.parametrize("token", PROTO["tokens"], ids=_ids(PROTO["tokens"]))
def test_channel_outcomes(token: Dict[str, Any]) -> None:
    described = fwledger.parse_token(token["text"], vendor_key=ROOT)
    assert described["vendor"] == "acme"
    assert described["channel"] == PROTO["channel"]["id"]
    assert described["epochs"] == token["epochs"]
    assert described["reader"] == ("reader" in token)
    follower = fwledger.Follower(token["text"], vendor_key=ROOT)
    assert follower.channel == PROTO["channel"]["id"]
    for message in PROTO["channel"]["messages"]:
        outcome = next(o for o in message["outcomes"] if o["token"] == token["name"])
        wire = bytes.fromhex(message["wire"])
        if outcome["error"] is None:
            entry = follower.ingest(wire, now=NOW)
            event = entry["kind"]
            if event == "keyload":
                event = "keyload-admitted" if entry["admitted"] else "keyload-excluded"
            assert event == outcome["event"], message["seq"]
            assert entry["seq"] == message["seq"]
            if entry["kind"] == "release":
                assert bytes.fromhex(entry["signed_manifest"])
        else:
            with pytest.raises(fwledger.VerificationError) as info:
                follower.ingest(wire, now=NOW)
            assert info.value.reason == outcome["error"]
            assert info.value.advanced == outcome["advanced"]


@pytest.mark.parametrize("vector", PROTO["policy"], ids=_ids(PROTO["policy"]))
def test_policy(vector: Dict[str, Any]) -> None:
    device = vector["device"]
    kwargs = dict(
        manifest=bytes.fromhex(_manifest(vector["manifest"])["signed"]),
        image=IMAGE,
        vendor_key=ROOT,
        model=device["model"],
        hw=device["hardware"],
        current=device["version"],
        security_version=device["security_version"],
        now=vector["now"],
    )
    if vector["expected"] == "ok":
        assert fwledger.verify(**kwargs)["model"] == device["model"]
    else:
        with pytest.raises(fwledger.VerificationError) as info:
            fwledger.verify(**kwargs)
        assert info.value.reason == vector["expected"]


# ---------------------------------------------------------------------------------------------
# cid.json (the small vectors; the large ones run in the Rust suite)
# ---------------------------------------------------------------------------------------------

CID = _load("cid.json")
SMALL = 8 * 1024 * 1024
MASK = (1 << 64) - 1


def splitmix64_bytes(seed: int, size: int) -> bytes:
    """The generator cid.json describes: little-endian SplitMix64 outputs, truncated."""
    out = bytearray()
    state = seed
    pack = struct.Struct("<Q").pack
    for _ in range((size + 7) // 8):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out += pack(z ^ (z >> 31))
    return bytes(out[:size])


def test_cid_generator_matches_description() -> None:
    first = CID["generator"]["first_bytes_seed_1_hex"]
    assert splitmix64_bytes(1, len(first) // 2).hex() == first


SMALL_CIDS = [v for v in CID["vectors"] if v["size"] <= SMALL]


@pytest.mark.parametrize(
    "vector", SMALL_CIDS, ids=[f"{v['profile']}-{v['size']}" for v in SMALL_CIDS]
)
def test_cid_vector(vector: Dict[str, Any], tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(splitmix64_bytes(vector["seed"], vector["size"]))
    assert fwledger.cid(path, profile=vector["profile"]) == vector["cid"]
    if vector["profile"] == "unixfs-v1-2025":
        assert fwledger.cid(str(path)) == vector["cid"]  # the default profile


def test_cid_unknown_profile(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown CID profile"):
        fwledger.cid(path, profile="unixfs-v2")  # type: ignore[arg-type]


def test_cid_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(fwledger.Error) as info:
        fwledger.cid(tmp_path / "missing.bin")
    assert info.value.reason == "io"
