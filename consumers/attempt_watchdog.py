"""Ends delivery attempts that outlive the send timeout, with one timer for all of them.

``asyncio.timeout`` per attempt costs a timer-heap push and a cancel per message (15-18%
of a no-op worker's CPU in py-spy). Instead each attempt records its deadline here and one
task checks them every ``tick``; an overdue attempt's task is cancelled, and the attempt
turns that cancellation into ``TimeoutError``.

The timeout measures the request, not the event loop's other work:

- the clock restarts when the request leaves the process (``restart``, called by the send
  fence at the socket write): waiting for a pooled connection or connecting is bounded by
  the first deadline, the request by the second. The fence passed at that write, so the
  lease outlives the second deadline too.
- an attempt is cut only when it was already overdue at the *previous* check: between the
  two the loop has run at least one turn, so an answer that had arrived while the loop was
  busy elsewhere (a cold start, a slow callback) is taken, not cut off and sent again.
  Deadlines are set two ticks early for this, so an attempt never runs past the send
  timeout the lease fence counts on.
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
        self._limit = send_timeout - 2 * self.tick
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._cut: set[asyncio.Task[Any]] = set()

    def start(self) -> asyncio.Task[Any]:
        """Register the current task's attempt; pass the result to ``stop``/``was_cut``."""
        task = _TASK.get() or asyncio.current_task()
        assert task is not None
        self._deadlines[task] = time.monotonic() + self._limit
        return task

    def restart(self) -> None:
        """The current attempt's request leaves now: its send timeout counts from here."""
        task = _TASK.get() or asyncio.current_task()
        if task in self._deadlines:
            self._deadlines[task] = time.monotonic() + self._limit

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
        checked = time.monotonic()
        while True:
            await asyncio.sleep(self.tick)
            # Overdue as of the previous check: the loop has run since, so their answers,
            # had they come, would have been taken.
            overdue = [task for task, deadline in self._deadlines.items() if deadline <= checked]
            checked = time.monotonic()
            for task in overdue:
                del self._deadlines[task]
                self._cut.add(task)
                task.cancel(_CUT)
