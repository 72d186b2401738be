"""publish → read_channel → follow → fetch → verify in a temporary home, revocation of a
gateway, heartbeats, prepare/announce, and the GIL being released while Rust works."""

from __future__ import annotations

import hashlib
import pathlib
import threading
import time
from typing import Callable, List

import pytest

import fwledger


def test_round_trip(
    home: pathlib.Path, tmp_path: pathlib.Path, make_image: Callable[..., pathlib.Path]
) -> None:
    vendor = fwledger.Vendor.init(home, "Acme Lighting")
    assert vendor.name == "Acme Lighting"
    assert len(vendor.public_key) == 64 and bytes.fromhex(vendor.public_key)
    assert vendor.home == str(home)

    image = make_image("lamp-1.1.0.bin", 3 * 1024 * 1024 + 17)
    seen: List[int] = []
    release = vendor.publish(
        image,
        model="lamp",
        hw=["rev-b", "rev-c"],
        version="1.1.0",
        security_version=2,
        notes="Fixes the dimmer flicker.",
        progress=seen.append,
    )
    assert seen and seen[-1] == image.stat().st_size
    assert release.seq == 0
    assert (release.model, release.version, release.security_version) == ("lamp", "1.1.0", 2)
    assert release.size == image.stat().st_size
    assert release.sha256 == hashlib.sha256(image.read_bytes()).hexdigest()
    assert release.cid == fwledger.cid(image)
    assert pathlib.Path(release.manifest_path).is_file()
    as_dict = release.to_dict()
    for key in ("seq", "version", "cid", "sha256", "size", "manifest_path"):
        assert as_dict[key] == getattr(release, key)
    assert "lamp" in repr(release)

    token = vendor.token(gateway="living-room")
    assert token.startswith("fwl1")

    # read_channel: the ChannelEntry shape.
    entries = fwledger.read_channel(token, home=home, vendor_key=vendor.public_key)
    assert [e["kind"] for e in entries] == ["release"]
    entry = entries[0]
    assert list(entry)[0] == "kind"
    for key, value in (("seq", 0), ("epoch", 0), ("vendor", "Acme Lighting"), ("model", "lamp"),
                       ("hardware", ["rev-b", "rev-c"]), ("version", "1.1.0"),
                       ("security_version", 2), ("size", release.size),
                       ("sha256", release.sha256), ("cid", release.cid), ("expires", None),
                       ("key_generation", 1)):
        assert entry[key] == value, key
    assert isinstance(entry["issued"], int)
    assert bytes.fromhex(entry["signed_manifest"]) == pathlib.Path(
        release.manifest_path).read_bytes()

    # follow: what is there, then a release appended while the follower waits.
    image2 = make_image("lamp-1.2.0.bin", 100_000)
    follower = fwledger.follow(token, home=home, timeout=20)
    first = next(follower)
    assert (first["kind"], first["version"]) == ("release", "1.1.0")

    def publish_later() -> None:
        time.sleep(0.3)
        with fwledger.Vendor.open(home) as v:
            v.publish(image2, model="lamp", hw="rev-b", version="1.2.0", security_version=2)

    publisher = threading.Thread(target=publish_later)
    publisher.start()
    started = time.monotonic()
    second = next(follower)
    publisher.join()
    assert (second["kind"], second["version"]) == ("release", "1.2.0")
    assert time.monotonic() - started < 15
    assert follower.cursor == 2
    follower.close()
    assert follower.closed
    assert list(follower) == []

    # fetch, as a gateway would with the manifest from the channel, then verify as a device.
    out = tmp_path / "gateway" / "lamp-1.2.0.bin"
    fetched = fwledger.fetch(bytes.fromhex(second["signed_manifest"]), vendor.public_key, out,
                             home=home)
    assert out.read_bytes() == image2.read_bytes()
    assert fetched["cid"] == second["cid"]
    verified = fwledger.verify(
        manifest=bytes.fromhex(second["signed_manifest"]),
        image=out,
        vendor_key=vendor.public_key,
        model="lamp",
        hw="rev-b",
        current="1.1.0",
        security_version=2,
    )
    assert verified["version"] == "1.2.0"

    # The vendor's own view.
    history = vendor.history()
    assert [(e["kind"], e["seq"]) for e in history] == [("release", 0), ("release", 1)]
    gateways = vendor.gateways()
    assert [(g["name"], g["revoked"]) for g in gateways] == [("living-room", None)]


def test_follow_times_out_when_idle(vendor: fwledger.Vendor, home: pathlib.Path) -> None:
    token = vendor.token()
    started = time.monotonic()
    assert list(fwledger.follow(token, home=home, timeout=0.5)) == []
    assert 0.4 < time.monotonic() - started < 5


def test_follow_resumes_from_state(
    vendor: fwledger.Vendor, home: pathlib.Path, tmp_path: pathlib.Path,
    make_image: Callable[..., pathlib.Path]
) -> None:
    token = vendor.token(gateway="hub")
    vendor.publish(make_image("a.bin"), model="lamp", hw="rev-b", version="1.0.0")
    state = tmp_path / "follow-state.json"
    with fwledger.follow(token, home=home, state=state, timeout=0.2) as f:
        assert [e["version"] for e in f] == ["1.0.0"]
    assert state.is_file()
    vendor.publish(make_image("b.bin"), model="lamp", hw="rev-b", version="1.1.0")
    with fwledger.follow(token, home=home, state=state, timeout=0.2) as f:
        assert [e["version"] for e in f] == ["1.1.0"]


def test_poll(vendor: fwledger.Vendor, home: pathlib.Path,
              make_image: Callable[..., pathlib.Path]) -> None:
    token = vendor.token()
    f = fwledger.follow(token, home=home)
    assert f.poll() is None
    vendor.publish(make_image(), model="lamp", hw="rev-b", version="1.0.0")
    entry = f.poll(5.0)
    assert entry is not None and entry["version"] == "1.0.0"
    assert f.poll(0) is None


def test_revoked_gateway_sees_epoch_key(
    vendor: fwledger.Vendor, home: pathlib.Path, make_image: Callable[..., pathlib.Path]
) -> None:
    kept = vendor.token(gateway="kept")
    revoked = vendor.token(gateway="revoked")
    simple = vendor.token(simple=True)
    vendor.publish(make_image("a.bin"), model="lamp", hw="rev-b", version="1.0.0")

    keyload_seq = vendor.rotate_key(revoke="revoked")
    assert keyload_seq == 1
    vendor.publish(make_image("b.bin"), model="lamp", hw="rev-b", version="1.1.0")

    def kinds(token: str) -> List[str]:
        return [e["kind"] for e in fwledger.read_channel(token, home=home)]

    assert kinds(kept) == ["release", "keyload", "release"]
    assert fwledger.read_channel(kept, home=home)[1]["admitted"] is True

    for token in (revoked, simple):
        entries = fwledger.read_channel(token, home=home)
        assert [e["kind"] for e in entries] == ["release", "keyload", "rejected"]
        assert entries[1]["admitted"] is False
        rejected = entries[2]
        assert rejected["check"] == "epoch-key"
        assert rejected["position"] == 2
        assert "revoked" in rejected["error"]

    gateways = {g["name"]: g for g in vendor.gateways()}
    assert gateways["revoked"]["revoked"] is not None
    assert gateways["kept"]["revoked"] is None
    with pytest.raises(fwledger.VendorError) as info:
        vendor.rotate_key(revoke="revoked")
    assert info.value.reason == "unknown-gateway"


def test_heartbeat_freshness(vendor: fwledger.Vendor, home: pathlib.Path) -> None:
    token = vendor.token()
    f = fwledger.follow(token, home=home, timeout=0.2)
    assert f.freshness == {"state": "unknown", "valid_until": None}
    seq = vendor.heartbeat(3600)
    entries = list(f)
    assert entries[0]["kind"] == "heartbeat" and entries[0]["seq"] == seq
    freshness = f.freshness
    assert freshness["state"] == "fresh"
    assert freshness["valid_until"] >= time.time() + 3500
    vendor.heartbeat("2h")
    vendor.heartbeat(__import__("datetime").timedelta(minutes=5))
    with pytest.raises(ValueError):
        vendor.heartbeat("2 fortnights")


def test_prepare_then_announce(
    vendor: fwledger.Vendor, home: pathlib.Path, make_image: Callable[..., pathlib.Path]
) -> None:
    image = make_image()
    prepared = vendor.prepare(image, model="lamp", hw="rev-b", version="3.0.0",
                              prerequisite="2.0.0")
    assert not prepared.announced
    assert prepared.manifest["prerequisite"] == "2.0.0"
    assert pathlib.Path(prepared.manifest_path).is_file()
    assert vendor.history() == []
    release = vendor.announce(prepared)
    assert prepared.announced
    assert release.cid == prepared.manifest["cid"]
    with pytest.raises(fwledger.VendorError) as info:
        vendor.announce(prepared)
    assert info.value.reason == "already-announced"
    assert [e["kind"] for e in vendor.history()] == ["release"]


def test_gil_released_during_long_work(
    vendor: fwledger.Vendor, home: pathlib.Path, make_image: Callable[..., pathlib.Path]
) -> None:
    """Python threads keep running while verify, cid and a blocking follow work in Rust."""
    image = make_image("big.bin", 48 * 1024 * 1024)
    release = vendor.publish(image, model="lamp", hw="rev-b", version="1.0.0")
    token = vendor.token()

    def ticks_during(work: Callable[[], object]) -> int:
        done = threading.Event()
        count = 0

        def run() -> None:
            try:
                work()
            finally:
                done.set()

        worker = threading.Thread(target=run)
        worker.start()
        while not done.is_set():
            count += 1
            time.sleep(0.001)
        worker.join()
        return count

    assert ticks_during(lambda: fwledger.verify(
        manifest=release.manifest_path, image=image, vendor_key=vendor.public_key)) > 5
    assert ticks_during(lambda: fwledger.cid(image)) > 5
    follower = fwledger.follow(token, home=home, timeout=0.5)
    assert ticks_during(lambda: list(follower)) > 50


def test_ctrl_c_interrupts_a_blocking_follow(vendor: fwledger.Vendor, home: pathlib.Path) -> None:
    import _thread
    import signal

    token = vendor.token()
    # A process started in the background inherits SIGINT as ignored, and then interrupt_main()
    # does nothing: install Python's handler for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            # Bounded: without the interrupt the follow ends after 20 s and the test fails.
            for _ in fwledger.follow(token, home=home, timeout=20):
                pass
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 5
