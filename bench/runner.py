"""Run the chosen scenarios on one redis-server, repeated, with a progress display."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bench.context import BenchContext
from bench.machine import describe_machine, load_average
from bench.redis_target import BenchRedis, pick_redis_server
from bench.report import Report
from bench.results import ScenarioResult
from bench.scenarios import Scenario, load
from bench.sizes import Sizes

__all__ = ("RunOptions", "run")


class RunOptions:
    def __init__(
        self,
        *,
        scenarios: Sequence[str],
        sizes: Sizes,
        mode: str,
        quick: bool = False,
        smoke: bool = False,
        redis_server: str | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.scenarios = list(scenarios)
        self.sizes = sizes
        self.mode = mode
        self.quick = quick
        self.smoke = smoke
        self.redis_server = redis_server
        self.workdir = workdir


@contextlib.contextmanager
def _workdir(explicit: Path | None) -> Iterator[Path]:
    if explicit is not None:
        explicit.mkdir(parents=True, exist_ok=True)
        yield explicit
        return
    with tempfile.TemporaryDirectory(prefix="relayq-bench-") as tmp:
        yield Path(tmp)


def _status_line(progress: Progress, task: TaskID, prefix: str) -> Callable[[str], None]:
    def show(text: str) -> None:
        progress.update(task, description=f"{prefix}: {text}")

    return show


def _run_scenario(
    scenario: Scenario, ctx: BenchContext, progress: Progress, task: TaskID, console: Console
) -> ScenarioResult:
    result = ScenarioResult(scenario.name, scenario.title, scenario.description)
    repeats = scenario.repeats(ctx.sizes)
    started = time.perf_counter()
    for index in range(repeats):
        prefix = f"{scenario.name} {index + 1}/{repeats}"
        ctx.status = lambda text, prefix=prefix: progress.update(
            task, description=f"{prefix}: {text}"
        )  # type: ignore[misc]
        try:
            result.merge(scenario.run(ctx))
        except Exception as exc:  # one broken scenario must not sink the run
            result.errors.append(f"run {index + 1}: {type(exc).__name__}: {str(exc)[-600:]}")
            console.log(f"[red]{scenario.name}: {type(exc).__name__}: {str(exc)[-300:]}[/red]")
            progress.advance(task, repeats - index)
            break
        progress.advance(task)
    result.seconds = time.perf_counter() - started
    return result


def run(options: RunOptions, console: Console) -> Report:
    """Start a redis-server, run every chosen scenario, stop everything; return the report."""
    binary = pick_redis_server(options.redis_server)
    scenarios = [load(name) for name in options.scenarios]
    total = sum(s.repeats(options.sizes) for s in scenarios)
    started = time.perf_counter()
    results: list[ScenarioResult] = []
    with _workdir(options.workdir) as workdir, BenchRedis(workdir / "redis", binary) as server:
        ctx = BenchContext(url=server.url, port=server.port, redis=binary, sizes=options.sizes,
                           workdir=workdir, quick=options.quick, smoke=options.smoke)  # fmt: skip
        machine = describe_machine(server.url, binary)
        console.log(f"redis-server {binary.version} ({binary.malloc}) on {server.url}, "
                    f"no persistence; work folder {workdir}")  # fmt: skip
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=console, refresh_per_second=4) as progress:
            task = progress.add_task("starting", total=total)
            for scenario in scenarios:
                result = _run_scenario(scenario, ctx, progress, task, console)
                results.append(result)
                status = "ok" if result.ok else "[red]check failed, row not measured or error[/red]"
                console.log(
                    f"{scenario.name}: {result.runs} run(s), {result.seconds:.0f} s, {status}"
                )
    return Report(machine=machine, mode=options.mode, seconds=time.perf_counter() - started,
                  results=results, load_at_end=load_average())  # fmt: skip
