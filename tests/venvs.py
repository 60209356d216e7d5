"""Virtual environments some tests need (the oldest redis-py relayq allows; relayq beside a
distribution that could collide with it), built once with pip and kept in the temp folder
for later runs and sessions, keyed by Python version, name and requirements."""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
import sys
import tempfile
import venv
from collections.abc import Sequence
from pathlib import Path

import pytest

__all__ = ("cached_venv",)

NETWORK_TROUBLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
    "Could not fetch URL",
)


def cached_venv(name: str, requirements: Sequence[str], *, key: str = "") -> Path:
    """The python of a venv holding ``requirements`` (pip arguments); ``key`` adds to what
    makes it stale (e.g. a hash of the sources a requirement installs from a path)."""
    digest = json.dumps([sys.version, name, list(requirements), key]).encode()
    path = Path(tempfile.gettempdir()) / f"relayq-{name}-{hashlib.sha256(digest).hexdigest()[:12]}"
    ready = path / "relayq-ready"
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it right now
        if not ready.exists():
            _build(path, requirements)
            ready.write_text("\n".join(requirements))
    return path / "bin" / "python"


def _build(path: Path, requirements: Sequence[str]) -> None:
    """A venv at ``path`` with ``requirements``; skips the test when PyPI is unreachable."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    command = [str(path / "bin" / "python"), "-m", "pip", "install", "-q"]
    result = subprocess.run(
        [*command, "--disable-pip-version-check", "--retries", "2", "--timeout", "30",
         *requirements],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    if any(marker in output for marker in NETWORK_TROUBLE):
        pytest.skip(f"pip could not reach the package index to install {requirements}: {output}")
    pytest.fail(f"pip install {requirements} failed:\n{output}")
