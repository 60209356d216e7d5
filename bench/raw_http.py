"""The ceilings of relayq's HTTP path: raw clients POSTing to the same local provider.

:func:`post_many` runs in a child process (``bench.child``, an interpreter and a GIL of its
own, plain asyncio like the worker): ``n`` POSTs of a webhook-sized JSON body, at most
``concurrency`` in flight, over one keep-alive client (``aiohttp``: a ClientSession with
TCPConnector(limit=concurrency); ``httpx``: an AsyncClient with Limits(concurrency)).
:func:`wrk_rate` measures the provider alone with ``wrk`` (a C load generator that costs
next to nothing), to tell whether the provider is what caps the Python clients.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import httpx
import msgspec

__all__ = ("CLIENTS", "PostRun", "post_many", "wrk_rate")

CLIENTS = ("aiohttp", "httpx")


class PostRun(msgspec.Struct, frozen=True):
    seconds: float
    ok: int
    failed: int


def _body(index: int) -> bytes:
    """What the webhook deliverer POSTs (the local provider reads id/tenant/... from it)."""
    return msgspec.json.encode(
        {
            "id": f"raw-{index}",
            "tenant": "raw",
            "conversation": f"c-{index}",
            "recipient": "+15550001",
            "priority": "normal",
            "created_ms": int(time.time() * 1000),
            "metadata": {},
            "payload": {"text": "hello"},
        }
    )


_Send = Callable[[bytes], Awaitable[int]]


async def _drive(send: _Send, n: int, concurrency: int) -> PostRun:
    """``concurrency`` tasks taking the next of ``n`` requests until none is left."""
    indexes: Iterator[int] = iter(range(n))
    ok = failed = 0

    async def lane() -> None:
        nonlocal ok, failed
        for index in indexes:
            status = await send(_body(index))
            if 200 <= status < 300:
                ok += 1
            else:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return PostRun(time.perf_counter() - started, ok, failed)


async def _with_aiohttp(url: str, n: int, concurrency: int) -> PostRun:
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(body: bytes) -> int:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status

        return await _drive(send, n, concurrency)


async def _with_httpx(url: str, n: int, concurrency: int) -> PostRun:
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def send(body: bytes) -> int:
            response = await client.post(url, content=body, headers=headers)
            return response.status_code

        return await _drive(send, n, concurrency)


_RUNNERS = {"aiohttp": _with_aiohttp, "httpx": _with_httpx}


def post_many(url: str, n: int, concurrency: int, client: str) -> PostRun:
    """``n`` POSTs to ``url`` with ``client`` (one of :data:`CLIENTS`), ``concurrency`` at
    a time; in a child process."""
    return asyncio.run(_RUNNERS[client](url, n, concurrency))


_WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)


def wrk_rate(url: str, concurrency: int, seconds: float) -> float | None:
    """Requests per second ``wrk`` gets from ``url`` (POSTs of the same body, one thread,
    ``concurrency`` connections); None when wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = [[{_body(0).decode()}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(lua)
        argv = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(script), url]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    match = _WRK_RATE.search(out.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no rate: {out.stdout[-500:]}")
    return float(match.group(1))
