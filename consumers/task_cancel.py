"""Cancel tasks and wait until they have ended, even when a cancel gets swallowed.

A task can lose a cancel and go on running. CPython before 3.12 has a known race in
``asyncio.wait_for`` (python/cpython#86296, fixed by the 3.12 rewrite on
``asyncio.timeout``): a cancel that arrives just as the inner call finishes is dropped and
the result returned. redis-py sends every command through ``wait_for`` when a socket
timeout is set (redis-py 8 sets one by default). In a worker with 64 HTTP sends in flight
the shutdown's one ``cancel()`` of the ownership loop was lost inside
``Ownership.tick()``'s Redis calls in 8 of 10 SIGTERMs; the loop carried on and the
shutdown, awaiting it, hung until the process was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ("cancel_and_wait",)

_ASK_AGAIN_AFTER = 0.1
"""Seconds to wait for a cancelled task to end before cancelling it again."""


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and return once every one has ended, cancelling again each
    ``_ASK_AGAIN_AFTER`` s a task is still running. Their results and errors are dropped
    (the caller is shutting them down)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        while not task.done():
            await asyncio.wait((task,), timeout=_ASK_AGAIN_AFTER)
            if not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()
