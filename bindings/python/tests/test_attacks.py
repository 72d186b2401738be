"""Attacks on a release, each through the Python API against a real vendor, asserting the exact
check that fails closed (DESIGN.md section 2)."""

from __future__ import annotations

import pathlib
import time
from typing import Any, Callable, Dict

import pytest

import fwledger


@pytest.fixture
def published(
    vendor: fwledger.Vendor, make_image: Callable[..., pathlib.Path]
) -> Dict[str, Any]:
    image = make_image("lamp-1.1.0.bin", 2_500_000)
    release = vendor.publish(
        image, model="lamp", hw=["rev-b", "rev-c"], version="1.1.0", security_version=2
    )
    return {"vendor": vendor, "image": image, "release": release, "bytes": image.read_bytes()}


def _verify(p: Dict[str, Any], **kwargs: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = dict(
        manifest=p["release"].manifest_path, image=p["image"], vendor_key=p["vendor"].public_key
    )
    args.update(kwargs)
    return fwledger.verify(**args)


def _reason(p: Dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(fwledger.VerificationError) as info:
        _verify(p, **kwargs)
    assert str(info.value), "every failure carries a message"
    reason = info.value.reason
    assert reason is not None, "a verification failure names its check"
    return reason


def test_genuine_release_verifies(published: Dict[str, Any]) -> None:
    got = _verify(published, model="lamp", hw="rev-c", current="1.0.0", security_version=2)
    release = published["release"]
    assert (got["cid"], got["sha256"], got["size"]) == (release.cid, release.sha256, release.size)


def test_arbitrary_software_bit_flip(published: Dict[str, Any], tmp_path: pathlib.Path) -> None:
    data = bytearray(published["bytes"])
    data[len(data) // 2] ^= 0x01
    assert _reason(published, image=bytes(data)) == "image-sha256"
    path = tmp_path / "flipped.bin"
    path.write_bytes(bytes(data))
    assert _reason(published, image=path) == "image-sha256"


def test_truncated_image(published: Dict[str, Any]) -> None:
    assert _reason(published, image=published["bytes"][:-1]) == "image-size"


def test_endless_data_extra_bytes(published: Dict[str, Any]) -> None:
    assert _reason(published, image=published["bytes"] + b"\0") == "image-size"


def test_wrong_model(published: Dict[str, Any]) -> None:
    assert _reason(published, model="fan") == "model"


def test_wrong_hardware(published: Dict[str, Any]) -> None:
    assert _reason(published, model="lamp", hw="rev-a") == "hardware"


def test_rollback_older_security_version(published: Dict[str, Any]) -> None:
    # The device already accepted security version 3; this release has 2.
    assert _reason(published, security_version=3) == "security-version"


def test_rollback_older_version(published: Dict[str, Any]) -> None:
    assert _reason(published, current="1.2.0") == "version"
    assert _reason(published, current="1.1.0") == "version"


def test_wrong_vendor_key(published: Dict[str, Any], tmp_path: pathlib.Path) -> None:
    other = fwledger.Vendor.init(tmp_path / "globex", "globex")
    assert _reason(published, vendor_key=other.public_key) == "release-key-certificate"


def test_vendor_key_as_bytes(published: Dict[str, Any]) -> None:
    key = bytes.fromhex(published["vendor"].public_key)
    assert _verify(published, vendor_key=key)["vendor"] == "acme"


def test_vendor_key_malformed(published: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _verify(published, vendor_key="abcd")
    with pytest.raises(TypeError):
        _verify(published, vendor_key=1234)


def test_manifest_tampered(published: Dict[str, Any]) -> None:
    manifest = pathlib.Path(published["release"].manifest_path).read_bytes()
    signature_flip = bytearray(manifest)
    signature_flip[-1] ^= 0x01
    assert _reason(published, manifest=bytes(signature_flip)) == "manifest-signature"
    # No single-bit change anywhere in the signed manifest is accepted.
    for i in range(len(manifest)):
        tampered = bytearray(manifest)
        tampered[i] ^= 0x01 << (i % 8)
        with pytest.raises(fwledger.VerificationError):
            _verify(published, manifest=bytes(tampered), image=published["bytes"])


def test_manifest_garbage(published: Dict[str, Any]) -> None:
    assert _reason(published, manifest=b"\x00not a manifest") == "manifest-format"


def test_expired_release(
    vendor: fwledger.Vendor, make_image: Callable[..., pathlib.Path]
) -> None:
    image = make_image()
    release = vendor.publish(image, model="lamp", hw="rev-b", version="2.0.0", expires=60)
    p = {"vendor": vendor, "image": image, "release": release}
    assert _verify(p)["expires"] is not None
    later = int(time.time()) + 3600
    assert _reason(p, now=later) == "manifest-expiry"
    assert _verify(p, now=later, check_time=False)["version"] == "2.0.0"


def test_release_key_compromise_recovery(
    published: Dict[str, Any], make_image: Callable[..., pathlib.Path]
) -> None:
    vendor = published["vendor"]
    assert vendor.release_key_generation == 1
    vendor.rotate_key(release_key=True)
    assert vendor.release_key_generation == 2
    image = make_image("lamp-1.2.0.bin")
    release = vendor.publish(image, model="lamp", hw="rev-b", version="1.2.0")
    fresh = {"vendor": vendor, "image": image, "release": release}
    assert _verify(fresh, min_key_generation=2)["key_generation"] == 2
    # A device that has seen generation 2 refuses what the old (compromised) key signed.
    assert _reason(published, min_key_generation=2) == "release-key-generation"


def test_malicious_mirror_tampered_blocks(
    published: Dict[str, Any], home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    for block in (home / "store" / "blocks").glob("*/bafkrei*.data"):
        data = bytearray(block.read_bytes())
        data[0] ^= 0xFF
        block.write_bytes(bytes(data))
    out = tmp_path / "fetched.bin"
    with pytest.raises(fwledger.StoreError) as info:
        fwledger.fetch(
            published["release"].manifest_path, published["vendor"].public_key, out, home=home
        )
    assert info.value.reason == "block-mismatch"
    assert not out.exists()
    assert not list(tmp_path.glob(".fetched.bin.part*")), "no partial file left behind"


def test_fetch_refuses_forged_manifest(published: Dict[str, Any], home: pathlib.Path,
                                       tmp_path: pathlib.Path) -> None:
    other = fwledger.Vendor.init(tmp_path / "globex", "globex")
    out = tmp_path / "fetched.bin"
    with pytest.raises(fwledger.VerificationError) as info:
        fwledger.fetch(published["release"].manifest_path, other.public_key, out, home=home)
    assert info.value.reason == "release-key-certificate"
    assert not out.exists()


def test_revoked_release_is_announced(published: Dict[str, Any], home: pathlib.Path) -> None:
    vendor = published["vendor"]
    token = vendor.token(gateway="hub")
    seq = vendor.revoke("1.1.0", reason="bricks rev-c boards")
    entries = fwledger.read_channel(token, home=home)
    revoke = entries[-1]
    assert revoke == {
        "kind": "revoke",
        "seq": seq,
        "epoch": 0,
        "model": "lamp",
        "version": "1.1.0",
        "reason": "bricks rev-c boards",
    }
    with pytest.raises(fwledger.VendorError) as info:
        vendor.revoke("9.9.9")
    assert info.value.reason == "unknown-release"
