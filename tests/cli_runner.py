"""Running the real ``relayq`` command line as a subprocess in an environment a test
chooses (its own HOME, no REDIS_URL, ...), and checks on how it failed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = (
    "assert_one_line_error",
    "clean_environment",
    "killing_leftovers",
    "processes_mentioning",
    "relayq",
)


def clean_environment(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment without any relayq setting or XDG data folder, with
    ``HOME`` at ``home`` and ``variables`` on top."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RELAYQ_", "REDIS_URL", "XDG_DATA_HOME"))
    }
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables)
    return env


def relayq(
    env: dict[str, str], *args: str, cwd: Path, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``relayq <args>`` run in ``cwd`` with exactly ``env``."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "relayq.ops.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(
    done: subprocess.CompletedProcess[str], code: int, *fragments: str
) -> None:
    """The command failed with ``code`` and exactly one ``relayq: error:`` line naming
    every fragment; no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("relayq: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def processes_mentioning(text: str) -> dict[int, str]:
    """Running processes whose command line contains ``text`` (a test's tmp folder)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command:
            found[int(entry.name)] = command
    return found


@contextlib.contextmanager
def killing_leftovers(folder: Path) -> Iterator[None]:
    """On exit, kill (by pid) any process still running from ``folder``: a redis-server a
    failing command started must not outlive its test."""
    try:
        yield
    finally:
        for pid in processes_mentioning(str(folder)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
