"""The consumer group on relayq's streams: create it, find it in replies, compare stream ids.

redis-py runs the commands (``xgroup_create``, ``xinfo_groups``, ...); this module holds
what relayq does with their replies, whichever side reads them (the worker, its burst
check, the ops CLI). Replies carry ``bytes`` or ``str`` depending on the client's
``decode_responses``: every helper takes both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from relayq.streams.keys import GROUP

__all__ = ("as_text", "ensure_groups", "find_group", "parse_stream_id")

_GROUP_NAMES = (GROUP, GROUP.encode())


def as_text(value: bytes | str) -> str:
    """A reply field as text, whether the client decodes replies or not."""
    return value.decode() if isinstance(value, bytes) else value


def parse_stream_id(value: bytes | str) -> tuple[int, int]:
    """A stream entry id (``"<ms>-<seq>"``, or ``"<ms>"``) as a comparable pair."""
    millis, _, seq = as_text(value).partition("-")
    return int(millis), int(seq or 0)


def find_group(groups: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """relayq's group in an XINFO GROUPS reply, or None when the stream has none."""
    return next((group for group in groups if group["name"] in _GROUP_NAMES), None)


async def ensure_groups(client: Redis, streams: Sequence[str]) -> None:
    """Create the consumer group on each stream (from id 0, creating the stream) if missing."""
    async with client.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xgroup_create(stream, GROUP, id="0", mkstream=True)
        replies = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
            raise reply
