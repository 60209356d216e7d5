"""A channel whose provider rejects its credentials (WhatsApp 190: the token expired):
paused for every worker until an operator resumes it, instead of failing every message.

The pause is the operator's own kind (``ns:paused``, scope ``channel:<c>``) with the reason
as its value, so ``relayq paused`` shows why and ``relayq resume --channel C`` lifts it once
the credentials are fixed (workers read new credentials at start: restart them first).
The message that met the error keeps its place and its attempts; so do the channel's
others. The first worker to see it logs ``channel_down`` at error level: the alert.
"""

from __future__ import annotations

import datetime as dt

import structlog
from redis.asyncio import Redis

from relayq.consumers.pause_state import PauseState
from relayq.streams.errors import ChannelDownError
from relayq.streams.keys import Keys, channel_pause_scope

__all__ = ("pause_down_channel",)

_log = structlog.get_logger(__name__)


async def pause_down_channel(
    client: Redis,
    keys: Keys,
    pauses: PauseState,
    channel: str,
    error: ChannelDownError,
    worker_id: str,
) -> None:
    """Pause ``channel`` everywhere with ``error`` as the reason (the first reason stays)."""
    pauses.pause_channel(channel)
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    reason = f"{error.kind}: {error.reason} (worker {worker_id}, {at})"
    first = await client.hsetnx(keys.paused, channel_pause_scope(channel), reason)
    log = _log.error if first else _log.warning
    log(
        "channel_down",
        channel=channel,
        error_kind=error.kind,
        error=error.reason,
        action=f"paused: fix the credentials, restart workers, `relayq resume --channel {channel}`",
    )
