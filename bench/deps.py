"""Make sure the ``bench`` extra is installed in this interpreter's environment.

"Installed" means importable AND at the versions pyproject.toml's ``bench`` extra asks for:
an environment from an older extra can hold every module yet break (taskiq-redis 1.0 with
taskiq 0.13 fails to import; redis-py 5 makes kombu 5.7, so celery, refuse to connect).
When the install fails or leaves something out, the run goes on: the peers that need it are
reported as MISSING or FAILED with the reason.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench.processes import REPO_ROOT

__all__ = (
    "BENCH_MODULES",
    "bench_extra",
    "ensure_bench_extra",
    "missing_modules",
    "unmet_requirements",
)

BENCH_MODULES = ("bullmq", "arq", "saq", "taskiq", "taskiq_redis", "faststream", "dramatiq",
                 "celery", "rq")  # fmt: skip
"""One import per package of the ``bench`` extra in pyproject.toml."""
_PIP_INSTALL = "pip install -e '.[bench]'"


def _py_spy_missing() -> bool:
    return not Path(sys.executable).with_name("py-spy").exists() and not shutil.which("py-spy")


def missing_modules() -> list[str]:
    """The bench extra's packages this environment lacks (py-spy is a program)."""
    missing = [name for name in BENCH_MODULES if importlib.util.find_spec(name) is None]
    return [*missing, "py-spy"] if _py_spy_missing() else missing


def bench_extra(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The requirements of pyproject.toml's ``bench`` extra (none when it cannot be read)."""
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return []
    extra: list[str] = data.get("project", {}).get("optional-dependencies", {}).get("bench", [])
    return extra


def unmet_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The bench extra's requirements the installed distributions do not meet, as
    ``"name version (needs spec)"`` (empty when ``packaging`` is unavailable to tell)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - pytest and the bench extra both bring it
        return []
    unmet = []
    for line in bench_extra(pyproject):
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": "bench"}):
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{requirement.name} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{requirement.name} {installed} (needs {requirement.specifier})")
    return unmet


def _needed() -> list[str]:
    return list(dict.fromkeys([*missing_modules(), *unmet_requirements()]))


def _pip_install() -> int:
    argv = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
            "-e", f"{REPO_ROOT}[bench]"]  # fmt: skip
    return subprocess.run(argv, check=False).returncode


def ensure_bench_extra(console: Console) -> None:
    """``pip install -e '.[bench]'`` into this environment when a bench package is missing or
    at a version the extra excludes; warns (never stops the run) when that does not help."""
    needed = _needed()
    if not needed:
        return
    console.print(
        escape(f"bench extra not met ({', '.join(needed)}): installing it into {sys.prefix} "
               f"({_PIP_INSTALL})"),
        style="yellow", highlight=False,
    )  # fmt: skip
    status = _pip_install()
    importlib.invalidate_caches()
    still = _needed()
    if status != 0 or still:
        console.print(
            escape(f"{_PIP_INSTALL} exited {status}; still not met: "
                   f"{', '.join(still) or 'nothing'}. The peers that need them are reported "
                   "as MISSING or FAILED."),
            style="red", highlight=False,
        )  # fmt: skip
