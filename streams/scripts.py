"""The Lua scripts in ``streams/lua``, registered once per Redis client.

``register_script`` runs EVALSHA and reloads the script on NOSCRIPT, so a restarted or
flushed Redis needs nothing from us.
"""

from __future__ import annotations

import re
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

__all__ = ("Scripts", "script_source")


_INCLUDE = re.compile(r"^-- #include (_[a-z_]+)$", re.MULTILINE)


def _read(name: str) -> str:
    return resources.files("relayq.streams").joinpath("lua", f"{name}.lua").read_text()


def script_source(name: str) -> str:
    """The text of ``streams/lua/<name>.lua``, each ``-- #include _fragment`` line replaced
    by ``streams/lua/_fragment.lua`` (shared Lua functions, written once)."""
    return _INCLUDE.sub(lambda match: _read(match.group(1)), _read(name))


class Scripts:
    """Registered scripts of one client; build once and reuse."""

    __slots__ = (
        "acknowledge",
        "admit_and_read",
        "channel_admit",
        "dead_letter",
        "enqueue",
        "enqueue_many",
        "fire_schedule",
        "lease_release",
        "lease_renew",
        "lease_round",
        "mark_started",
        "promote_due",
        "record_attempt",
    )

    def __init__(self, client: Redis) -> None:
        self.enqueue: AsyncScript = client.register_script(script_source("enqueue_8"))
        self.acknowledge: AsyncScript = client.register_script(script_source("acknowledge_8"))
        self.enqueue_many: AsyncScript = client.register_script(script_source("enqueue_many_4"))
        self.admit_and_read: AsyncScript = client.register_script(script_source("admit_and_read"))
        self.dead_letter: AsyncScript = client.register_script(script_source("dead_letter_11"))
        self.promote_due: AsyncScript = client.register_script(script_source("promote_due"))
        self.lease_renew: AsyncScript = client.register_script(script_source("lease_renew_1"))
        self.lease_release: AsyncScript = client.register_script(script_source("lease_release_1"))
        self.lease_round: AsyncScript = client.register_script(script_source("lease_round"))
        self.fire_schedule: AsyncScript = client.register_script(script_source("fire_schedule_6"))
        self.mark_started: AsyncScript = client.register_script(script_source("mark_started_2"))
        self.channel_admit: AsyncScript = client.register_script(script_source("channel_admit_4"))
        self.record_attempt: AsyncScript = client.register_script(script_source("record_attempt_4"))
