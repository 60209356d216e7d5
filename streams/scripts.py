"""The Lua scripts in ``streams/lua``, registered once per Redis client.

``register_script`` runs EVALSHA and reloads the script on NOSCRIPT, so a restarted or
flushed Redis needs nothing from us.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

__all__ = ("Scripts", "script_source")


def script_source(name: str) -> str:
    """The text of ``streams/lua/<name>.lua``."""
    return resources.files("relayq.streams").joinpath("lua", f"{name}.lua").read_text()


class Scripts:
    """Registered scripts of one client; build once and reuse."""

    __slots__ = (
        "dead_letter",
        "enqueue",
        "fire_schedule",
        "lease_release",
        "lease_renew",
        "lease_round",
        "mark_started",
        "promote_due",
    )

    def __init__(self, client: Redis) -> None:
        self.enqueue: AsyncScript = client.register_script(
            script_source("enqueue_with_dedup_or_delay_4")
        )
        self.dead_letter: AsyncScript = client.register_script(script_source("dead_letter_4"))
        self.promote_due: AsyncScript = client.register_script(script_source("promote_due"))
        self.lease_renew: AsyncScript = client.register_script(script_source("lease_renew_1"))
        self.lease_release: AsyncScript = client.register_script(script_source("lease_release_1"))
        self.lease_round: AsyncScript = client.register_script(script_source("lease_round"))
        self.fire_schedule: AsyncScript = client.register_script(script_source("fire_schedule_3"))
        self.mark_started: AsyncScript = client.register_script(script_source("mark_started_1"))
