"""Ends delivery attempts that outlive the send timeout, with one timer for all of them.

``asyncio.timeout`` per attempt costs a timer-heap push and a cancel per message (15-18%
of a no-op worker's CPU in py-spy). Instead each attempt records its deadline here and one
task checks them every ``tick``; an overdue attempt's task is cancelled, and the attempt
turns that cancellation into ``TimeoutError``. Deadlines are set ``tick`` early, so an
attempt never runs past the send timeout the lease fence counts on.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Any

__all__ = ("AttemptWatchdog", "remember_task")

_TASK: ContextVar[asyncio.Task[Any] | None] = ContextVar("relayq_lane_task", default=None)


def remember_task() -> None:
    """Called once by a long-lived task (a lane): ``start`` then finds it without
    ``asyncio.current_task()``, which was 11% of a no-op worker's CPU per message."""
    _TASK.set(asyncio.current_task())


_CUT = "relayq: delivery attempt exceeded send_timeout"


class AttemptWatchdog:
    def __init__(self, send_timeout: float) -> None:
        self.tick = min(0.05, send_timeout / 20)
        self._limit = send_timeout - self.tick
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._cut: set[asyncio.Task[Any]] = set()

    def start(self) -> asyncio.Task[Any]:
        """Register the current task's attempt; pass the result to ``stop``/``was_cut``."""
        task = _TASK.get() or asyncio.current_task()
        assert task is not None
        self._deadlines[task] = time.monotonic() + self._limit
        return task

    def stop(self, task: asyncio.Task[Any]) -> None:
        self._deadlines.pop(task, None)

    def was_cut(self, task: asyncio.Task[Any]) -> bool:
        """True (once) when ``task`` was cancelled here; its cancellation is withdrawn."""
        if task not in self._cut:
            return False
        self._cut.discard(task)
        task.uncancel()
        return True

    async def run(self) -> None:
        """Cancel overdue attempts; runs until cancelled."""
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            overdue = [task for task, deadline in self._deadlines.items() if deadline <= now]
            for task in overdue:
                del self._deadlines[task]
                self._cut.add(task)
                task.cancel(_CUT)
