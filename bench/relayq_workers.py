"""relayq worker processes for a benchmark: ``relayq worker`` as users run it, several at once.

A scenario that measures delivery of a backlog wants the workers ready when the backlog
appears, not the time they take to start and agree on partitions. So :class:`Fleet`
starts the workers on an empty namespace, waits until their logs say the partitions are
split between them (each held once), pauses them (SIGSTOP), lets the scenario write its
backlog, and resumes them (SIGCONT): the clock runs from the first delivery to the last.
Leases (30 s) and heartbeats outlive the pause by far. redis-py 8 gives every socket a 5 s
read timeout by default, which a pause of a few seconds would trip on resume, so the
workers' ``REDIS_URL`` asks for ``socket_timeout=60``; nothing else differs from a default
worker. Stopping is SIGTERM, the graceful shutdown users get, after which each worker's
deliverer writes its stats (:mod:`bench.relayq_deliverer`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import redis

from bench.peers import counter
from bench.processes import ProcessGroup, child_env, python_argv
from bench.relayq_deliverer import (
    OUT_DIR_ENV,
    RECORD_ENV,
    Record,
    WorkerStats,
    read_records,
    read_stats,
)
from bench.relayq_env import relayq_env

__all__ = ("DeliveryRun", "Fleet", "FleetError")

_POLL = 0.01
_TICKS = os.sysconf("SC_CLK_TCK")
_EVENTS = {"partition_acquired": 1, "partition_released": -1, "partition_lost": -1}


def _with_socket_timeout(url: str, seconds: int = 60) -> str:
    return f"{url}{'&' if '?' in url else '?'}socket_timeout={seconds}"


class FleetError(RuntimeError):
    """A worker died, or the fleet did not get where it should within its time."""


class DeliveryRun(msgspec.Struct, frozen=True):
    """What the fleet delivered: count and the first/last delivery (wall clock, s)."""

    delivered: int
    first: float
    last: float
    complete: bool

    @property
    def seconds(self) -> float:
        """First to last delivery (NaN when unknown, never 0)."""
        span = self.last - self.first
        return span if span > 0 else float("nan")

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds


class Fleet:
    """``count`` worker processes on ``url``, logs and stats under ``workdir``."""

    def __init__(
        self,
        group: ProcessGroup,
        url: str,
        workdir: Path,
        *,
        count: int = 1,
        env: dict[str, str] | None = None,
        record: bool = False,
        partitions: int = 16,
    ) -> None:
        self._group = group
        self._url = url
        self.workdir = workdir
        self._count = count
        self._partitions = partitions
        paused_ok = _with_socket_timeout(url)
        self._env = relayq_env(paused_ok, **(env or {}))
        self._env[counter.URL_ENV] = paused_ok
        self._env[OUT_DIR_ENV] = str(workdir)
        self._env[RECORD_ENV] = "1" if record else "0"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed = False
        self._client = redis.Redis.from_url(url)

    def _log(self, index: int) -> Path:
        return self.workdir / f"worker-{index}.log"

    def start(self, timeout: float = 30.0) -> Fleet:
        """Start the workers and wait until they hold every partition between them."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = python_argv("-m", "relayq.ops.cli", "--log-level", "info", "worker")
        for index in range(self._count):
            self.procs.append(
                self._group.spawn(argv, env=child_env(self._env), log=self._log(index))
            )
        self._wait_settled(timeout)
        return self

    def _held(self) -> list[int]:
        held = []
        for index in range(self._count):
            total = 0
            text = self._log(index).read_text(errors="replace") if self._log(index).exists() else ""
            for line in text.splitlines():
                if line.startswith("{") and '"partition_' in line:
                    total += _EVENTS.get(json.loads(line).get("event", ""), 0)
            held.append(total)
        return held

    def _wait_settled(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        stable_since: float | None = None
        while True:
            self._check_alive()
            held = self._held()
            settled = sum(held) == self._partitions and all(h > 0 for h in held)
            now = time.monotonic()
            if settled and stable_since is None:
                stable_since = now
            elif not settled:
                stable_since = None
            # One worker owns everything at once. Several: a worker gives partitions up
            # only once it has seen the newcomer, so all holding some and together all
            # is the split; one more ownership tick (0.5 s) confirms it.
            wait = 0.0 if self._count == 1 else 0.6
            if stable_since is not None and now - stable_since >= wait:
                return
            if now > deadline:
                raise FleetError(f"partitions not split after {timeout:.0f} s: held {held}")
            time.sleep(0.05)

    def _check_alive(self) -> None:
        for index, proc in enumerate(self.procs):
            if proc.poll() is not None:
                tail = self._log(index).read_text(errors="replace")[-1500:]
                raise FleetError(f"worker {index} exited ({proc.returncode}): {tail}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the worker processes used so far."""
        total = 0.0
        for proc in self.procs:
            try:
                with open(f"/proc/{proc.pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / _TICKS
        return total

    def peak_rss_bytes(self) -> int:
        """The highest resident set size (VmHWM) of any running worker process so far."""
        peaks = [0]
        for proc in self.procs:
            try:
                with open(f"/proc/{proc.pid}/status") as handle:
                    status = handle.read()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) * 1024)  # "VmHWM:   51234 kB"
        return max(peaks)

    def pause(self) -> None:
        self._group.signal_all(signal.SIGSTOP, self.procs)

    def resume(self) -> None:
        self._group.signal_all(signal.SIGCONT, self.procs)

    def processed(self) -> tuple[int, float | None, float | None]:
        """(count, first, last) as the workers' counters flushed them (live progress)."""
        return counter.read(self._client)

    def wait_for(self, target: int, timeout: float, count: Callable[[], int] | None = None) -> bool:
        """Wait until ``target`` deliveries are counted (by the workers' counter, or by
        ``count``); False when ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            done = count() if count is not None else self.processed()[0]
            if done >= target:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL if count is None else 5 * _POLL)

    def stop(self) -> list[str]:
        """SIGTERM every worker (graceful); how each ended. A worker still running after
        20 s is killed, and ``killed`` says so (a shutdown that hung is worth a look)."""
        hows = [self._group.stop(proc, timeout=20) for proc in self.procs]
        self.killed = "SIGKILL" in hows
        self.procs = []
        self._client.close()
        return hows

    def stats(self) -> list[WorkerStats]:
        return read_stats(self.workdir)

    def result(self, target: int) -> DeliveryRun:
        """The run as the workers saw it (their stats files; the counter as a fallback)."""
        stats = [s for s in self.stats() if s.count]
        if len(stats) == self._count:  # every worker shut down cleanly and wrote its own
            delivered = sum(s.count for s in stats)
            first = min(s.first_ns for s in stats) / 1e9
            last = max(s.last_ns for s in stats) / 1e9
        else:
            client = redis.Redis.from_url(self._url)
            try:
                delivered, first_or_none, last_or_none = counter.read(client)
            finally:
                client.close()
            # The counter's times, flushed every 10 ms (several workers: the last flush wins).
            nan = float("nan")
            first = first_or_none if first_or_none is not None else nan
            last = last_or_none if last_or_none is not None else nan
        return DeliveryRun(delivered, first, last, delivered >= target)

    def records(self) -> list[Record]:
        return read_records(self.workdir)
