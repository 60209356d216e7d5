"""Operator pauses (``ns:paused``): the whole namespace, one priority or one tenant.

Workers refresh this every ``Worker`` ownership tick (<= 0.5 s), so a pause takes effect
within a second: paused conversations are set aside before their next send starts,
in-flight sends finish, nothing is dropped; on resume they continue in order. The scopes
(the hash's fields) are built in ``streams.keys`` (``pause_scope``), as ``Controls``
writes them.
"""

from __future__ import annotations

from redis.asyncio import Redis

from relayq.streams.keys import (
    PAUSE_ALL,
    TENANT_PAUSE_PREFIX,
    Keys,
    priority_pause_scope,
    tenant_pause_scope,
)

__all__ = ("PauseState",)


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

    def level_paused(self, priority: str) -> bool:
        """Whether nothing of this level may be admitted (the level or everything paused)."""
        scopes = self.scopes
        return bool(scopes) and (PAUSE_ALL in scopes or priority_pause_scope(priority) in scopes)

    def paused_tenants(self) -> list[str]:
        """The tenants paused one by one."""
        cut = len(TENANT_PAUSE_PREFIX)
        return [s[cut:] for s in self.scopes if s.startswith(TENANT_PAUSE_PREFIX)]

    def is_paused(self, priority: str, tenant: str) -> bool:
        scopes = self.scopes
        if not scopes:
            return False
        return (
            PAUSE_ALL in scopes
            or priority_pause_scope(priority) in scopes
            or tenant_pause_scope(tenant) in scopes
        )
