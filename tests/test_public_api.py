"""The public surface is defined and checked (as httpx's test_exported_members): everything
public is reachable from ``relayq`` and listed in its sorted ``__all__``, documented, and
every module declares a tuple ``__all__``. Nothing imports the old top-level names."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import relayq

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = {"consumers", "ops", "producers", "streams"}
OLD_IMPORT = re.compile(r"^\s*(from|import) (streams|producers|consumers|ops)\b", re.MULTILINE)


def test_all_is_sorted_and_names_every_public_member() -> None:
    assert list(relayq.__all__) == sorted(relayq.__all__)
    assert isinstance(relayq.__all__, tuple)
    assert set(relayq._EXPORTS) == set(relayq.__all__)
    for name in relayq.__all__:  # each resolves to the object its module defines
        assert getattr(relayq, name) is getattr(
            importlib.import_module(relayq._EXPORTS[name]), name
        )
    public = {name for name in vars(relayq) if not name.startswith("_")} - SUBPACKAGES
    assert public - {"annotations", "importlib", "TYPE_CHECKING", "Any"} <= set(relayq.__all__)


def test_import_relayq_imports_nothing_heavy() -> None:
    """The relayq command imports the package first; a worker must catch SIGTERM early."""
    code = "import sys, relayq; print(sorted(m for m in sys.modules if m.startswith('relayq.')))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"


def test_every_exported_name_is_documented() -> None:
    undocumented = [name for name in relayq.__all__ if not inspect.getdoc(getattr(relayq, name))]
    assert undocumented == []


def test_every_module_declares_a_tuple_all() -> None:
    modules = [
        info.name for info in pkgutil.walk_packages(relayq.__path__, "relayq.") if not info.ispkg
    ]
    assert len(modules) > 40
    missing = [
        name
        for name in modules
        if not isinstance(getattr(importlib.import_module(name), "__all__", None), tuple)
    ]
    assert missing == []


def test_nothing_imports_the_old_top_level_names() -> None:
    """streams, producers, consumers and ops are importable from the repository root, but
    only as relayq.*: a module imported under both names would be two modules."""
    sources = [ROOT / "relayq" / "__init__.py"] + [
        path
        for folder in ("streams", "producers", "consumers", "ops", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
    ]
    offenders = [str(p.relative_to(ROOT)) for p in sources if OLD_IMPORT.search(p.read_text())]
    assert offenders == []
