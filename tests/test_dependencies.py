"""Every declared run-time dependency is used by the library at run time: imported by its
sources (streams/, producers/, consumers/, ops/). A package only tests, benchmarks or users
need belongs in an extra."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ("streams", "producers", "consumers", "ops")


def _declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = []
    for requirement in project["dependencies"]:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match is not None, requirement
        names.append(match.group())
    return names


def _imported_by_library() -> set[str]:
    modules: set[str] = set()
    for folder in LIBRARY:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module)
    return modules


def _modules_of(distribution: str) -> set[str]:
    """The dotted names of the modules a distribution installs (from its RECORD)."""
    files = importlib.metadata.distribution(distribution).files or []
    modules = set()
    for file in files:
        if file.suffix != ".py" or ".." in file.parts:
            continue
        parts = file.with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


@pytest.mark.parametrize("distribution", _declared())
def test_a_declared_dependency_is_used_at_run_time(distribution: str) -> None:
    used = _imported_by_library() & _modules_of(distribution)
    assert used, (
        f"{distribution} is declared in [project].dependencies but the library never imports "
        "it: drop it, or move it to the extra that uses it"
    )
