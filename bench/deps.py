"""Make sure the ``bench`` extra is installed in this interpreter's environment."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from bench.processes import REPO_ROOT

__all__ = ("BENCH_MODULES", "ensure_bench_extra", "missing_modules")

BENCH_MODULES = ("bullmq", "arq", "saq", "taskiq_redis", "faststream", "dramatiq", "celery",
                 "rq")  # fmt: skip
"""One import per package of the ``bench`` extra in pyproject.toml."""


def _py_spy_missing() -> bool:
    return not Path(sys.executable).with_name("py-spy").exists() and not shutil.which("py-spy")


def missing_modules() -> list[str]:
    """The bench extra's packages this environment lacks (py-spy is a program)."""
    missing = [name for name in BENCH_MODULES if importlib.util.find_spec(name) is None]
    return [*missing, "py-spy"] if _py_spy_missing() else missing


def ensure_bench_extra(console: Console) -> None:
    """``pip install -e '.[bench]'`` into this environment when a bench package is missing."""
    missing = missing_modules()
    if not missing:
        return
    console.print(
        f"[yellow]missing {', '.join(missing)}: installing relayq's bench extra into "
        f"{sys.prefix} (pip install -e '.[bench]')[/yellow]"
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-e", f"{REPO_ROOT}[bench]"],
        check=True,
    )  # fmt: skip
    importlib.invalidate_caches()
    still = missing_modules()
    if still:
        raise SystemExit(f"the bench extra did not provide {', '.join(still)}")
