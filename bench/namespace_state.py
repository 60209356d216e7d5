"""What a relayq namespace holds in Redis, for the memory measurements: streams, their
pending entries, waiting lists and rings (key names as ``relayq.streams.keys`` builds them).

The bench's namespace is ``bench`` (:mod:`bench.relayq_env`); every per-partition key starts
with its hash tag ``{bench:P}``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import redis

from bench.relayq_env import NAMESPACE
from relayq.streams.keys import GROUP

__all__ = ("Leftovers", "drain_acknowledged", "key_bytes", "leftovers")

_TAGGED = f"{{{NAMESPACE}:*}}:*"


class Leftovers(msgspec.Struct, frozen=True):
    """Fair-layout keys still present once every message was delivered."""

    waiting_lists: int
    ring_entries: int
    stream_entries: int


def _keys(client: redis.Redis, match: str, kind: str | None = None) -> list[bytes]:
    return list(client.scan_iter(match=match, count=1_000, _type=kind))


def _groups(client: redis.Redis) -> dict[bytes, dict[str, Any]]:
    """Every stream of the namespace read through relayq's group, with that group's info."""
    found = {}
    for stream in _keys(client, _TAGGED, "stream"):
        groups: Any = client.xinfo_groups(stream)
        group = next((g for g in groups if g["name"] == GROUP.encode()), None)
        if group is not None:
            found[stream] = group
    return found


def _trim(client: redis.Redis, stream: bytes, group: dict[str, Any]) -> None:
    """Delete the entries the group has read and acknowledged (what a worker's trim does
    every 10 s; here at once)."""
    ms, seq = (int(part) for part in group["last-delivered-id"].decode().split("-"))
    client.xtrim(stream, minid=f"{ms}-{seq + 1}", approximate=False)


def drain_acknowledged(url: str, timeout: float = 10.0) -> None:
    """Wait until no entry is pending (acknowledgements flushed), then trim every stream of
    the namespace to what is unread."""
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + timeout
        groups = _groups(client)
        while any(g["pending"] for g in groups.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
            groups = _groups(client)
        for stream, group in groups.items():
            _trim(client, stream, group)
    finally:
        client.close()


def leftovers(url: str) -> Leftovers:
    """How many waiting lists and ring entries the namespace still has."""
    client = redis.Redis.from_url(url)
    try:
        lists = _keys(client, f"{{{NAMESPACE}:*}}:*:w:*", "list")
        rings = _keys(client, f"{{{NAMESPACE}:*}}:*:ring")
        streams = list(_groups(client))
        return Leftovers(
            waiting_lists=len(lists),
            ring_entries=sum(int(client.llen(ring)) for ring in rings),
            stream_entries=sum(int(client.xlen(stream)) for stream in streams),
        )
    finally:
        client.close()


def key_bytes(url: str) -> tuple[int, int]:
    """(keys, bytes): every key of the database and the sum of their ``MEMORY USAGE``
    (all elements counted), i.e. what the data holds, without client buffers or the
    allocator's swings."""
    client = redis.Redis.from_url(url)
    try:
        keys = _keys(client, "*")
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        sizes = pipe.execute()
    finally:
        client.close()
    return len(keys), sum(int(size or 0) for size in sizes)
