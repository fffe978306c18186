"""Waiting for something that happens in another thread or process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], timeout: float = 60.0, interval: float = 0.05) -> T:
    """Poll ``check`` (plain or async) until it returns something truthy, and return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def answering(url: str, timeout: float = 120.0) -> None:
    """Wait until ``url`` answers 200: a server process that is starting up (which imports the whole
    gateway first: seconds on a quiet machine, over half a minute on a loaded one)."""

    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(url)).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(up, timeout=timeout, interval=0.2)
