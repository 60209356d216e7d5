"""Every child process a benchmark run starts, and stopping all of them whatever happens.

Children run in their own session (process group), so stopping one stops whatever it
spawned too. :class:`ProcessGroup` is a context manager: leaving it, normally, on an
exception or on Ctrl-C, stops every child still running (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ("REPO_ROOT", "ProcessGroup", "child_env", "python_argv", "stop_process")

REPO_ROOT = Path(__file__).resolve().parents[1]
_STOP_TIMEOUT = 10.0


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment, with the repository on PYTHONPATH (``bench`` is not installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def python_argv(*args: str) -> list[str]:
    """``python <args>`` with this interpreter."""
    return [sys.executable, *args]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = _STOP_TIMEOUT) -> str:
    """Stop a child started in its own session, with its children; say how it ended."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of an exited leader
        return "exited"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGCONT)  # a paused child cannot handle SIGTERM
        os.killpg(proc.pid, signal.SIGTERM)
    how = "SIGTERM"
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        how = "SIGKILL"
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return how


class ProcessGroup:
    """Children of one benchmark step; all stopped on exit from the ``with`` block."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        stdout: int | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own session; stdout and stderr go to ``log`` when given."""
        out = log.open("ab") if log is not None else None
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out if out is not None else stdout,
                stderr=subprocess.STDOUT if out is not None or stdout is not None else None,
                env=dict(env) if env is not None else child_env(),
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()
        self.children.append(proc)
        return proc

    def signal_all(self, signum: int, procs: Sequence[subprocess.Popen[bytes]]) -> None:
        """Send ``signum`` to each of ``procs`` (and its children)."""
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signum)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = _STOP_TIMEOUT) -> str:
        how = stop_process(proc, timeout)
        if proc in self.children:
            self.children.remove(proc)
        return how

    def stop_all(self) -> None:
        """Stop every child still known, newest first."""
        for proc in reversed(list(self.children)):
            self.stop(proc)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop_all()
