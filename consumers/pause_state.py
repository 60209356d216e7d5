"""Operator pauses (``ns:paused``): the whole namespace, one priority or one tenant.

Workers refresh this every ``Worker`` ownership tick (<= 0.5 s), so a pause takes effect
within a second: paused conversations are set aside before their next send starts,
in-flight sends finish, nothing is dropped; on resume they continue in order.
"""

from __future__ import annotations

from redis.asyncio import Redis

from relayq.streams.keys import Keys
from relayq.streams.message import Priority

__all__ = ("PauseState", "pause_scope")


def pause_scope(*, priority: Priority | None = None, tenant: str | None = None) -> str:
    """The ``ns:paused`` field for a scope: ``all``, ``priority:<p>`` or ``tenant:<t>``."""
    if priority is not None and tenant is not None:
        raise ValueError("pause one priority or one tenant, not both at once")
    if priority is not None:
        return f"priority:{Priority(priority).value}"
    if tenant is not None:
        return f"tenant:{tenant}"
    return "all"


class PauseState:
    def __init__(self) -> None:
        self.scopes: frozenset[str] = frozenset()

    async def refresh(self, client: Redis, keys: Keys) -> bool:
        """Reload the paused scopes; True when something was resumed since the last load."""
        raw = await client.hkeys(keys.paused)
        scopes = frozenset(s.decode() if isinstance(s, bytes) else s for s in raw)
        resumed = bool(self.scopes - scopes)
        self.scopes = scopes
        return resumed

    def is_paused(self, priority: Priority, tenant: str) -> bool:
        scopes = self.scopes
        if not scopes:
            return False
        return (
            "all" in scopes
            or f"priority:{priority.value}" in scopes
            or f"tenant:{tenant}" in scopes
        )
