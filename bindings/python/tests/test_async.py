"""The asyncio follower: `async for entry in fwledger.follow_async(...)`."""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any, Callable, Dict, List

import fwledger


def test_follow_async_sees_existing_and_new_releases(
    vendor: fwledger.Vendor, home: pathlib.Path, make_image: Callable[..., pathlib.Path]
) -> None:
    token = vendor.token(gateway="hub")
    vendor.publish(make_image("a.bin"), model="lamp", hw="rev-b", version="1.0.0")
    image_b = make_image("b.bin")

    async def main() -> List[Dict[str, Any]]:
        loop = asyncio.get_running_loop()
        ticks = 0
        got: List[Dict[str, Any]] = []

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        async for entry in fwledger.follow_async(token, home=home, timeout=3):
            got.append(entry)
            if len(got) == 1:
                # Publish from a worker thread while the loop keeps following.
                await loop.run_in_executor(
                    None,
                    lambda: vendor.publish(image_b, model="lamp", hw="rev-b", version="1.1.0"),
                )
            if len(got) == 2:
                break
        tick_task.cancel()
        assert ticks > 0, "the event loop ran while the follower waited"
        return got

    got = asyncio.run(main())
    assert [e["version"] for e in got] == ["1.0.0", "1.1.0"]


def test_follow_async_idle_timeout(vendor: fwledger.Vendor, home: pathlib.Path) -> None:
    token = vendor.token()

    async def main() -> List[Dict[str, Any]]:
        return [e async for e in fwledger.follow_async(token, home=home, timeout=0.3)]

    started = time.monotonic()
    assert asyncio.run(main()) == []
    assert time.monotonic() - started < 5


def test_follow_async_cancel(vendor: fwledger.Vendor, home: pathlib.Path) -> None:
    token = vendor.token()

    async def consume() -> None:
        async for _ in fwledger.follow_async(token, home=home):
            pass

    async def main() -> None:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert task.cancelled()

    started = time.monotonic()
    asyncio.run(main())  # returns once the executor's last short wait ends
    assert time.monotonic() - started < 5


def test_follow_async_bad_token_raises(home: pathlib.Path) -> None:
    async def main() -> None:
        async for _ in fwledger.follow_async("fwl1notatoken", home=home):
            pass

    try:
        asyncio.run(main())
    except fwledger.TokenError as e:
        assert e.reason in ("token-format", "token-checksum")
    else:
        raise AssertionError("a bad token must raise TokenError")
