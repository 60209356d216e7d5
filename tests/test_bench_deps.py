"""The ``bench`` extra installs what the peers import, at versions that work together, and
``python -m bench`` goes on (reporting the peers as missing) when installing it fails.

Left to pip, the old extra resolved to redis-py 5 (arq >= 0.26 caps it below 6), hence
taskiq-redis 1.0, which fails to import with taskiq 0.13, and celery 5.4 with kombu 5.7, whose
Redis transport refuses redis-py < 6.1: both peers showed rows of zeros.
"""

from __future__ import annotations

import io
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from rich.console import Console

import bench.deps
from bench.deps import bench_extra, ensure_bench_extra, unmet_requirements
from bench.peers import PEERS


def _bench_extra() -> dict[str, Requirement]:
    return {r.name: r for r in map(Requirement, bench_extra())}


def test_the_extra_names_every_peer_library_and_what_they_import() -> None:
    names = set(_bench_extra())
    assert set(PEERS) <= names
    assert {"taskiq", "redis", "py-spy"} <= names  # `python -m taskiq worker`; the shared client


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("redis", "5.3.1"),  # kombu 5.7's Redis transport refuses it (celery processed 0)
        ("arq", "0.28.0"),  # caps redis-py < 6
        ("taskiq-redis", "1.0.9"),  # fails to import with taskiq 0.13
        ("celery", "5.4.0"),  # its redis extra caps redis-py < 6
    ],
)
def test_the_extra_excludes_the_versions_that_broke_peers(name: str, version: str) -> None:
    assert not _bench_extra()[name].specifier.contains(version)


def test_unmet_requirements_name_absent_and_excluded_versions(tmp_path: Path) -> None:
    installed = metadata.version("msgspec")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[project.optional-dependencies]\n"
        'bench = ["msgspec>=0.1", "msgspec[yaml]<0.1", "no-such-bench-peer>=1"]\n'
    )

    assert unmet_requirements(pyproject) == [
        f"msgspec {installed} (needs <0.1)",
        "no-such-bench-peer (not installed)",
    ]


def test_a_failed_install_is_reported_and_the_run_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    installs: list[str] = []

    def pip_install() -> int:  # as offline: pip fails
        installs.append("pip")
        return 1

    monkeypatch.setattr(bench.deps, "missing_modules", lambda: ["taskiq_redis"])
    monkeypatch.setattr(bench.deps, "unmet_requirements", lambda: ["redis 5.3.1 (needs >=6.4)"])
    monkeypatch.setattr(bench.deps, "_pip_install", pip_install)
    screen = io.StringIO()

    ensure_bench_extra(Console(file=screen, width=300, color_system=None))

    assert installs == ["pip"]
    text = " ".join(screen.getvalue().split())
    assert "pip install -e '.[bench]' exited 1; still not met: taskiq_redis, redis 5.3.1" in text
    assert "reported as MISSING or FAILED" in text
