"""The exception hierarchy: classes, `reason`, messages, and argument errors."""

from __future__ import annotations

import pathlib
from typing import Callable

import pytest

import fwledger


def test_hierarchy() -> None:
    for cls in (fwledger.VerificationError, fwledger.LedgerError, fwledger.StoreError,
                fwledger.TokenError, fwledger.VendorError):
        assert issubclass(cls, fwledger.Error)
        assert cls.__module__ == "fwledger"
        assert cls.__doc__
    assert issubclass(fwledger.Error, Exception)
    assert fwledger.Error("x").reason is None


def test_vendor_not_initialized(tmp_path: pathlib.Path) -> None:
    with pytest.raises(fwledger.VendorError) as info:
        fwledger.Vendor.open(tmp_path / "nothing")
    assert info.value.reason == "not-initialized"
    assert "vendor init" in str(info.value)


def test_vendor_already_initialized(vendor: fwledger.Vendor, home: pathlib.Path) -> None:
    with pytest.raises(fwledger.VendorError) as info:
        fwledger.Vendor.init(home, "acme")
    assert info.value.reason == "already-initialized"


def test_default_home_from_environment(isolated_home: pathlib.Path) -> None:
    assert fwledger.default_home() == str(isolated_home)
    vendor = fwledger.Vendor.init(None, "acme")
    assert vendor.home == str(isolated_home)
    assert fwledger.Vendor.open().public_key == vendor.public_key


def test_already_published(
    vendor: fwledger.Vendor, make_image: Callable[..., pathlib.Path]
) -> None:
    image = make_image()
    vendor.publish(image, model="lamp", hw="rev-b", version="1.0.0")
    with pytest.raises(fwledger.VendorError) as info:
        vendor.publish(image, model="lamp", hw="rev-b", version="1.0.0")
    assert info.value.reason == "already-published"
    assert "already published" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(model="lamp", hw="rev-b", version="one"),
        dict(model="", hw="rev-b", version="1.0.0"),
        dict(model="lamp", hw=[], version="1.0.0"),
        dict(model="lamp", hw="rev-b", version="1.0.0", prerequisite="x"),
    ],
)
def test_invalid_release(
    vendor: fwledger.Vendor, make_image: Callable[..., pathlib.Path], kwargs: dict
) -> None:
    with pytest.raises(fwledger.VendorError) as info:
        vendor.publish(make_image(), **kwargs)
    assert info.value.reason == "invalid-argument"


def test_publish_missing_file(vendor: fwledger.Vendor, tmp_path: pathlib.Path) -> None:
    with pytest.raises(fwledger.VendorError) as info:
        vendor.publish(tmp_path / "missing.bin", model="lamp", hw="rev-b", version="1.0.0")
    assert info.value.reason == "invalid-argument"


def test_argument_types(vendor: fwledger.Vendor, make_image: Callable[..., pathlib.Path]) -> None:
    image = make_image()
    with pytest.raises(TypeError):
        vendor.publish(image, model="lamp", hw=7, version="1.0.0")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vendor.publish(image, model="lamp", hw="rev-b")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        vendor.publish(image, model="lamp", hw="rev-b", version="1.0.0", expires="soon")
    with pytest.raises(ValueError):
        vendor.token(gateway="x", simple=True)
    with pytest.raises(ValueError):
        fwledger.verify(manifest=b"", image=b"", vendor_key="00" * 32, current="new")


def test_token_errors(home: pathlib.Path, vendor: fwledger.Vendor) -> None:
    token = vendor.token()
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    cases = [("hello", "token-format"), (flipped, "token-checksum")]
    for text, reason in cases:
        for call in (lambda: fwledger.read_channel(text, home=home),
                     lambda: fwledger.follow(text, home=home),
                     lambda: fwledger.parse_token(text)):
            with pytest.raises(fwledger.TokenError) as info:
                call()
            assert info.value.reason == reason
    with pytest.raises(fwledger.TokenError) as info:
        fwledger.read_channel(token, home=home, vendor_key="11" * 32)
    assert info.value.reason == "vendor-pin"


def test_duplicate_gateway_name(vendor: fwledger.Vendor) -> None:
    vendor.token(gateway="hub")
    with pytest.raises(fwledger.VendorError) as info:
        vendor.token(gateway="hub")
    assert info.value.reason == "invalid-argument"


def test_unsupported_ledger_and_store(tmp_path: pathlib.Path) -> None:
    with pytest.raises(fwledger.LedgerError) as info:
        fwledger.Vendor.init(tmp_path / "h", "acme", ledger="iota+https://example.invalid")
    assert info.value.reason == "unsupported"
    with pytest.raises(fwledger.StoreError) as info2:
        fwledger.Vendor.init(tmp_path / "h2", "acme", store="ftp://example.invalid")
    assert info2.value.reason == "unsupported"


def test_ledger_and_store_urls(
    tmp_path: pathlib.Path, make_image: Callable[..., pathlib.Path]
) -> None:
    """Vendor and gateway in different homes share a ledger and a store by URL."""
    ledger = f"sqlite:{tmp_path / 'shared.sqlite'}"
    store = f"embedded:{tmp_path / 'shared-store'}"
    vendor = fwledger.Vendor.init(tmp_path / "vendor", "acme", ledger=ledger, store=store)
    release = vendor.publish(make_image(), model="lamp", hw="rev-b", version="1.0.0")
    token = vendor.token()
    entries = fwledger.read_channel(token, home=tmp_path / "gateway", ledger=ledger)
    assert entries[0]["cid"] == release.cid
    out = tmp_path / "out.bin"
    fwledger.fetch(release.manifest_path, vendor.public_key, out, home=tmp_path / "gateway",
                   store=store)
    assert out.stat().st_size == release.size


def test_fetch_missing_content(
    vendor: fwledger.Vendor, make_image: Callable[..., pathlib.Path], tmp_path: pathlib.Path
) -> None:
    release = vendor.publish(make_image(), model="lamp", hw="rev-b", version="1.0.0")
    with pytest.raises(fwledger.StoreError) as info:
        fwledger.fetch(release.manifest_path, vendor.public_key, tmp_path / "out.bin",
                       home=tmp_path / "empty-home")
    assert info.value.reason == "not-found"


def test_closed_vendor(vendor: fwledger.Vendor) -> None:
    with vendor:
        pass
    with pytest.raises(fwledger.VendorError) as info:
        vendor.history()
    assert info.value.reason == "closed"


def test_missing_image_file(vendor: fwledger.Vendor, make_image: Callable[..., pathlib.Path],
                            tmp_path: pathlib.Path) -> None:
    release = vendor.publish(make_image(), model="lamp", hw="rev-b", version="1.0.0")
    with pytest.raises(fwledger.Error) as info:
        fwledger.verify(manifest=release.manifest_path, image=tmp_path / "nope.bin",
                        vendor_key=vendor.public_key)
    assert info.value.reason == "io"
    assert "nope.bin" in str(info.value)
    assert not isinstance(info.value, fwledger.VerificationError)


def test_docstrings() -> None:
    public = [getattr(fwledger, name) for name in fwledger.__all__ if name != "__version__"]
    for obj in public:
        assert obj.__doc__, obj
    for cls in (fwledger.Vendor, fwledger.Release, fwledger.Follow, fwledger.Follower,
                fwledger.PreparedRelease):
        for name in dir(cls):
            if name.startswith("_"):
                continue
            assert getattr(cls, name).__doc__, f"{cls.__name__}.{name}"
    stubs = pathlib.Path(fwledger.__file__).parent
    assert (stubs / "py.typed").is_file()
    assert (stubs / "_fwledger.pyi").is_file()
