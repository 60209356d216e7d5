"""Stop signals that arrive before a worker's event loop can handle them.

Importing the worker takes a few hundred milliseconds (redis, aiohttp, OpenTelemetry). A
SIGTERM in that window used to kill the process with the default action (exit -15), so a
supervisor's quick restart-then-stop looked like a crash. ``catch()`` is called first
thing for ``relayq worker``; the worker replays what was caught once its own handlers
are installed, which means a clean stop before it takes any partition.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ("EarlySignals",)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class EarlySignals:
    """Records stop signals until ``received`` is read by the worker's own handlers."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def catch(self) -> EarlySignals:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._note)
        return self

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
