"""The relayq of a commit before a change, for paired before/after measurements: the fair
layout (:data:`BASELINE_COMMIT`) and issue 14's outcome work (:data:`BEFORE_OUTCOMES_COMMIT`).

``git archive`` extracts that commit's package folders (not its ``bench``) into the run's
work folder; a child process started with :func:`baseline_env` imports ``relayq`` from
there and ``bench`` (the deliverer, the producer loops) from this tree: ``PYTHONPATH`` puts
the old tree first, and ``PYTHONSAFEPATH`` keeps the current directory (this repository)
off ``sys.path``. What the bench calls in those children (``Producer.send_many``, ``relayq
worker``, the deliverer protocol) exists in both.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from bench.processes import REPO_ROOT

__all__ = (
    "BASELINE_COMMIT",
    "BEFORE_OUTCOMES_COMMIT",
    "BaselineError",
    "baseline_env",
    "extract_baseline",
    "relayq_file",
)

BASELINE_COMMIT = "d0b228235f0703211e733af6f37457e9fb2d2c19"
"""The last commit before the fair layout (every message straight into its level's stream)."""
BEFORE_OUTCOMES_COMMIT = "f52b5bccfc4934b427298cd6f45d4e6436eb9cc6"
"""The last commit before issue 14's hot-path work (durable counters, outcome records and
events written with the acknowledgement)."""
_PATHS = ("relayq", "streams", "producers", "consumers", "ops")
"""The package: ``relayq/`` and the folders its subpackages link to."""


class BaselineError(RuntimeError):
    """The baseline commit could not be extracted (no git, or not in this history)."""


def extract_baseline(into: Path, commit: str = BASELINE_COMMIT) -> Path:
    """``commit``'s package in ``into/<short id>`` (extracted once per folder)."""
    tree = into / f"relayq-{commit[:7]}"
    if (tree / "relayq" / "__init__.py").exists():
        return tree
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, *_PATHS],
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise BaselineError(f"git archive {commit[:7]} failed: {exc} {detail.decode()}") from exc
    tree.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="tar")
    return tree


def baseline_env(tree: Path) -> dict[str, str]:
    """Variables for a child that runs the relayq in ``tree`` with this tree's ``bench``."""
    return {"PYTHONPATH": os.pathsep.join((str(tree), str(REPO_ROOT))), "PYTHONSAFEPATH": "1"}


def relayq_file() -> str:
    """Where this process imported ``relayq`` from (run in a child to check its env)."""
    import relayq

    return str(relayq.__file__)
