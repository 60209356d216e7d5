"""relayq installs under its own name only: beside Canonical's ``ops`` (a distribution whose
top-level package is ``ops``, as relayq's operator package once was) both work, and so do
the ``relayq`` command and ``from relayq import Producer``. Built from this checkout as a
regular (non-editable) install, the way users get it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from tests.venvs import cached_venv

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "relayq", "streams", "producers", "consumers", "ops")


def _source_hash() -> str:
    """Changes whenever a file that goes into the wheel changes (the venv is then rebuilt)."""
    digest = hashlib.sha256()
    for name in SOURCES:
        top = ROOT / name
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def test_relayq_and_canonicals_ops_installed_side_by_side(tmp_path: Path) -> None:
    python = cached_venv("beside-ops", [str(ROOT), "ops"], key=_source_hash())
    relayq_command = python.parent / "relayq"

    env_listing = subprocess.run(
        [str(relayq_command), "env"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert env_listing.returncode == 0, env_listing.stderr
    assert "REDIS_URL" in env_listing.stdout

    check = (
        "import ops, relayq\n"
        "from relayq import Producer\n"
        "assert hasattr(ops, 'CharmBase'), ops.__file__  # Canonical's, untouched\n"
        "print(Producer.__module__, relayq.__file__)\n"
    )
    imported = subprocess.run(
        [str(python), "-c", check],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("relayq.producers.async_producer ")
    assert str(ROOT) not in imported.stdout  # the installed copy, not this checkout
