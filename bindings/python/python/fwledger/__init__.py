"""fwledger: firmware releases over an authenticated ledger channel and IPFS.

Publish signed firmware releases as a vendor, read and follow a vendor's channel as a gateway,
fetch release images verified while they stream, and verify a manifest and an image the way a
device does. The work is done by the Rust library (``fwledger._fwledger``); every call that
touches files, the ledger or the content store releases the GIL.

Vendor side (a CI pipeline after a firmware build)::

    import fwledger

    vendor = fwledger.Vendor.open("/srv/acme")            # or Vendor.init(home, "Acme")
    release = vendor.publish("build/lamp.bin", model="lamp", hw=["rev-b", "rev-c"],
                             version="1.4.0", security_version=3)
    print(release.cid, release.manifest_path)
    token = vendor.token(gateway="living-room")           # hand this to the gateway

Gateway / device side::

    for entry in fwledger.read_channel(token, home="/srv/acme"):
        print(entry["kind"], entry.get("version"))

    fwledger.verify(manifest=release.manifest_path, image="lamp.bin",
                    vendor_key=vendor.public_key, model="lamp", hw="rev-b",
                    current="1.3.0", security_version=2)  # raises VerificationError

Errors are ``fwledger.Error`` subclasses (``VerificationError``, ``LedgerError``,
``StoreError``, ``TokenError``, ``VendorError``) with a message and a stable ``reason``.
Wrong argument types or values raise ``TypeError`` / ``ValueError``.
"""

from __future__ import annotations

import asyncio as _asyncio
import os as _os
import typing as _t

from ._fwledger import (
    Error,
    Follow,
    Follower,
    LedgerError,
    PreparedRelease,
    Release,
    StoreError,
    TokenError,
    Vendor,
    VendorError,
    VerificationError,
    __version__,
    cid,
    default_home,
    fetch,
    follow,
    parse_token,
    read_channel,
    verify,
)

__all__ = [
    "Error",
    "Follow",
    "Follower",
    "LedgerError",
    "PreparedRelease",
    "Release",
    "StoreError",
    "TokenError",
    "Vendor",
    "VendorError",
    "VerificationError",
    "__version__",
    "cid",
    "default_home",
    "fetch",
    "follow",
    "follow_async",
    "parse_token",
    "read_channel",
    "verify",
]

#: How long one wait in a worker thread lasts before ``follow_async`` checks for cancellation.
_ASYNC_POLL_SECONDS = 0.5


async def follow_async(
    token: str,
    home: _t.Optional[_t.Union[str, "_os.PathLike[str]"]] = None,
    state: _t.Optional[_t.Union[str, "_os.PathLike[str]"]] = None,
    timeout: _t.Optional[float] = None,
    *,
    ledger: str = "embedded",
    vendor_key: _t.Optional[_t.Union[str, bytes]] = None,
) -> _t.AsyncIterator[_t.Dict[str, _t.Any]]:
    """Follow a channel from asyncio: ``async for entry in fwledger.follow_async(token): ...``.

    The same entries and arguments as :func:`follow`. The waiting happens in the event loop's
    default executor, in short slices, so the loop stays free, cancelling the consuming task
    stops the follower within a fraction of a second, and a ``timeout`` (seconds without a new
    message) ends the iteration.
    """
    loop = _asyncio.get_running_loop()
    follower = await loop.run_in_executor(
        None,
        lambda: follow(token, home, state, None, ledger=ledger, vendor_key=vendor_key),
    )
    try:
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if deadline is None:
                wait = _ASYNC_POLL_SECONDS
            else:
                wait = min(_ASYNC_POLL_SECONDS, max(0.0, deadline - loop.time()))
            entry = await loop.run_in_executor(None, follower.poll, wait)
            if entry is not None:
                yield entry
                if timeout is not None:
                    deadline = loop.time() + timeout
            elif deadline is not None and loop.time() >= deadline:
                return
    finally:
        follower.close()
