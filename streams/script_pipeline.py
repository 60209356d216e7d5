"""Independent script calls in one pipelined round trip, without redis-py's check.

A script called with ``client=pipeline`` makes redis-py send ``SCRIPT EXISTS`` for every
script of the pipeline before it executes: one more round trip each time, on paths that
run per batch of messages (the acknowledger's flush). Here the calls go out as plain
EVALSHAs; the rare NOSCRIPT (a restarted or flushed Redis) loads the script and runs again
only the calls that got it — they did not run, so nothing runs twice. Only for calls that
do not depend on each other's order: a retried one runs after the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

__all__ = ("ScriptCall", "run_script_calls")

ScriptCall = tuple[AsyncScript, Sequence[Any], Sequence[Any]]
"""(script, keys, args) of one call."""


async def run_script_calls(client: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """The replies of ``calls``, in order, from one round trip (two after a NOSCRIPT).
    The first error reply is raised, as ``pipeline.execute()`` does."""
    replies = await _send(client, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {calls[i][0] for i in missing}:
            script.sha = await client.script_load(script.script)
        retried = await _send(client, [calls[i] for i in missing])
        for i, reply in zip(missing, retried, strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _send(client: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    return replies
