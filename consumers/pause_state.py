"""Operator pauses (``ns:paused``): the whole namespace, one priority, one tenant or one
channel (set by an operator, or by a worker whose provider rejected the channel's
credentials: ``consumers.channel_down``).

Workers refresh this every ``Worker`` ownership tick (<= 0.5 s), so a pause takes effect
within a second: paused conversations are set aside before their next send starts,
in-flight sends finish, nothing is dropped; on resume they continue in order. The scopes
(the hash's fields) are built in ``streams.keys`` (``pause_scope``), as ``Controls``
writes them.
"""

from __future__ import annotations

from redis.asyncio import Redis

from relayq.streams.keys import (
    CHANNEL_PAUSE_PREFIX,
    PAUSE_ALL,
    TENANT_PAUSE_PREFIX,
    Keys,
    channel_pause_scope,
    priority_pause_scope,
    tenant_pause_scope,
)

__all__ = ("PauseState",)


class PauseState:
    def __init__(self) -> None:
        self.scopes: frozenset[str] = frozenset()
        self.channels = False
        """Whether any channel is paused (else ``channel_paused`` is never asked)."""

    async def refresh(self, client: Redis, keys: Keys) -> bool:
        """Reload the paused scopes; True when something was resumed since the last load."""
        raw = await client.hkeys(keys.paused)
        scopes = frozenset(s.decode() if isinstance(s, bytes) else s for s in raw)
        resumed = bool(self.scopes - scopes)
        self.scopes = scopes
        self.channels = any(s.startswith(CHANNEL_PAUSE_PREFIX) for s in scopes)
        return resumed

    def pause_channel(self, channel: str) -> None:
        """Take a channel pause this worker wrote into account before the next refresh."""
        self.scopes = self.scopes | {channel_pause_scope(channel)}
        self.channels = True

    def channel_paused(self, channel: str) -> bool:
        return self.channels and channel_pause_scope(channel) in self.scopes

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
