"""Keep systemd told, from the worker's event loop: ``WATCHDOG=1`` and a ``STATUS=`` line.

Under a unit with ``WatchdogSec=``, systemd passes ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``)
and restarts the service when no ``WATCHDOG=1`` arrives within that time. The ping is sent
by a task on the worker's own event loop, every half of that time at most: a loop wedged by
a blocking call stops the pings, so systemd restarts the worker (a thread pinging would
keep a dead loop alive). ``STATUS=`` is what ``systemctl status`` shows, e.g.
``120 delivered, 3 in flight, 16 of 16 partitions, 2 retried, 0 dead-lettered``; it is
sent when it changes (checked on the same tick).

Nothing is sent, and no task runs, when ``$NOTIFY_SOCKET`` is unset (not under systemd).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

from relayq.consumers.metrics import WorkerMetrics
from relayq.consumers.systemd_notify import notify
from relayq.consumers.task_cancel import cancel_and_wait

__all__ = ("STATUS_INTERVAL", "SystemdPings", "status_line", "watchdog_timeout")

STATUS_INTERVAL = 2.0
"""Seconds between two looks at the status when the watchdog asks for no faster tick."""


def watchdog_timeout(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float:
    """The watchdog timeout systemd set for this process, in seconds; 0 when there is none.

    As sd_watchdog_enabled(3): ``$WATCHDOG_USEC`` must be a positive integer, and
    ``$WATCHDOG_PID``, when set, must be this process's pid (else the variables were
    inherited from a parent the watchdog is meant for).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return 0.0
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return 0.0
    return int(usec) / 1_000_000


def status_line(metrics: WorkerMetrics, held: int, partitions: int) -> str:
    """The worker's counts as ``systemctl status`` shows them."""
    return (
        f"{metrics.delivered} delivered, {metrics.in_flight} in flight, "
        f"{held} of {partitions} partitions, {metrics.retried} retried, "
        f"{metrics.dead_lettered} dead-lettered"
    )


class SystemdPings:
    """The pinging task; ``SystemdPings.start(status)`` on the running loop, ``aclose()``
    at the very end of shutdown (the pings go on while the worker drains)."""

    def __init__(self, status: Callable[[], str], timeout: float) -> None:
        self._status = status
        self._watchdog = timeout > 0
        self._period = min(timeout / 2, STATUS_INTERVAL) if self._watchdog else STATUS_INTERVAL
        self._prefix = ""
        self._last_status = ""
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, status: Callable[[], str]) -> SystemdPings:
        """Start pinging when under systemd (``$NOTIFY_SOCKET`` set); else an idle object."""
        pings = cls(status, watchdog_timeout())
        if os.environ.get("NOTIFY_SOCKET"):
            pings._task = asyncio.create_task(pings._run(), name="systemd_pings")
        return pings

    @property
    def period(self) -> float:
        """Seconds between two ticks."""
        return self._period

    def tick(self) -> None:
        """Send ``WATCHDOG=1`` (when asked for) and the status line if it changed."""
        lines = ["WATCHDOG=1"] if self._watchdog else []
        status = self._prefix + self._status()
        if status != self._last_status:
            self._last_status = status
            lines.append(f"STATUS={status}")
        if lines:
            notify("\n".join(lines))

    def stopping(self) -> None:
        """Tell systemd the worker is shutting down (``STOPPING=1``); the status says so."""
        self._prefix = "stopping: "
        notify("STOPPING=1")
        if self._task is not None:
            self.tick()

    async def aclose(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self._period)
