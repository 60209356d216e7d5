"""``health``: is this namespace able to deliver? For probes (exit 0/1) and the HTTP API.

Checks, in order (each says what it found):

- ``redis``: Redis answers PING (when it does not, the others are not run);
- ``namespace``: the settings' partitions and priority levels match the namespace's
  recorded shape (``streams.namespace_shape``; a namespace nobody has used yet passes);
- ``workers``: at least one worker's heartbeat is alive (``ns:workers``);
- ``oldest_waiting``: only with a threshold, the oldest waiting message is younger than it
  (``ops.counts``).
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from relayq.ops.counts import read_counts
from relayq.ops.durations import format_age
from relayq.ops.live_workers import live_workers
from relayq.streams.keys import Keys
from relayq.streams.stream_groups import as_text

__all__ = ("Check", "Health", "check_health", "unreachable")


class Check(msgspec.Struct, kw_only=True):
    name: str
    ok: bool
    detail: str


class Health(msgspec.Struct, kw_only=True):
    healthy: bool
    checks: list[Check]

    @classmethod
    def of(cls, checks: list[Check]) -> Health:
        return cls(healthy=all(check.ok for check in checks), checks=checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]


def unreachable(detail: str) -> Health:
    """The health of a namespace whose Redis does not answer."""
    return Health.of([Check(name="redis", ok=False, detail=detail)])


async def check_health(
    client: Redis, keys: Keys, *, max_oldest_waiting_ms: int | None = None
) -> Health:
    """Run the checks (see the module docstring) on ``client``'s Redis."""
    await client.ping()
    checks = [
        Check(name="redis", ok=True, detail="answers PING"),
        await _shape(client, keys),
        await _workers(client, keys),
    ]
    if max_oldest_waiting_ms is not None:
        checks.append(await _oldest_waiting(client, keys, max_oldest_waiting_ms))
    return Health.of(checks)


async def _shape(client: Redis, keys: Keys) -> Check:
    partitions, levels = await client.hmget(keys.meta, ["partitions", "priorities"])
    expected = f"{keys.partitions} partitions, levels {keys.levels}"
    recorded = (
        int(partitions) if partitions is not None else keys.partitions,
        as_text(levels) if levels is not None else str(keys.levels),
    )
    if recorded == (keys.partitions, str(keys.levels)):
        return Check(name="namespace", ok=True, detail=f"{keys.namespace!r}: {expected}")
    found = f"{recorded[0]} partitions, levels {recorded[1]}"
    detail = f"{keys.namespace!r} was created with {found}; these settings say {expected}"
    return Check(name="namespace", ok=False, detail=detail)


async def _workers(client: Redis, keys: Keys) -> Check:
    live = sorted(await live_workers(client, keys))
    if not live:
        return Check(name="workers", ok=False, detail="no live worker (no heartbeat in time)")
    shown = ", ".join(live[:5]) + (f" (+{len(live) - 5})" if len(live) > 5 else "")
    return Check(name="workers", ok=True, detail=f"{len(live)} live: {shown}")


async def _oldest_waiting(client: Redis, keys: Keys, limit_ms: int) -> Check:
    counts = await read_counts(client, keys)
    oldest = min(
        (row.oldest_waiting_ms for row in counts.rows if row.oldest_waiting_ms is not None),
        default=None,
    )
    if oldest is None:
        return Check(name="oldest_waiting", ok=True, detail="nothing waiting")
    age = counts.at_ms - oldest
    detail = f"oldest waiting {format_age(age)} (limit {format_age(limit_ms)})"
    return Check(name="oldest_waiting", ok=age <= limit_ms, detail=detail)
