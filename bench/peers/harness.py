"""Run one peer the same way for every peer: enqueue a backlog, then one worker process drains it.

For one peer and one concurrency mode, :func:`run_peer`:

1. flushes the Redis database;
2. runs the peer's producer in a subprocess: the first half of the N messages one at a time
   with its normal producer API, the second half with its bulk API (all N one at a time when
   it has none), timing each, within a deadline;
3. starts ONE worker process of the peer (its own session, so every child is stopped with it)
   whose job counts itself (:mod:`bench.peers.counter`): the no-op job, or the HTTP job that
   POSTs each message to a local provider (:mod:`bench.peers.jobs`);
4. polls the count until every enqueued message is processed or the time budget runs out,
   then stops the worker (SIGTERM, then SIGKILL) and reports a :class:`PeerResult`.

The processing rate runs from the first to the last processed job as the worker recorded
them, so interpreter and library startup are not counted (``startup_s`` says what it was).
A run's :attr:`PeerResult.status` is ``ok``, ``partial`` (cut by a budget), ``MISSING`` (the
library is not installed) or ``FAILED`` (it broke or processed nothing), and
:attr:`PeerResult.why` says why in one line.
A peer module calls :func:`peer_main` from its ``__main__`` block: ``produce`` and ``work``
are the subcommands the harness runs in those subprocesses.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import msgspec
import redis

from bench.payloads import payload
from bench.peers import counter, jobs
from bench.results import FAILED, MISSING, error_summary

__all__ = (
    "BULK_BATCH",
    "NOT_INSTALLED",
    "ORDERING_NOTE",
    "Budget",
    "ConcurrencyMode",
    "PeerResult",
    "PeerSpec",
    "ProduceReport",
    "default_budget",
    "installed_version",
    "peer_main",
    "python_module_argv",
    "run_peer",
)

ConcurrencyMode = Literal["default", "high"]
Extra = dict[str, str | int | float | bool]

BULK_BATCH = 100
ORDERING_NOTE = "no per-conversation order"
NOT_INSTALLED = "not installed"
REPO_ROOT = Path(__file__).resolve().parents[2]
_PRODUCE_MARK = "BENCH_PRODUCE "
_POLL = 0.02
_STOP_TIMEOUT = 5.0


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution``, or :data:`NOT_INSTALLED`."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    """Time bounds of one peer run, in seconds."""

    produce_s: float = 20.0
    startup_s: float = 20.0
    process_s: float = 20.0
    stop_s: float = 5.0  # SIGTERM to SIGKILL, at most (a peer's own stop_timeout may be less)


def default_budget(quick: bool = False) -> Budget:
    """Bounds sized so all peers, both modes, fit the suite's total on a 2-core machine."""
    if quick:
        return Budget(produce_s=5.0, startup_s=15.0, process_s=3.0, stop_s=2.0)
    return Budget(produce_s=15.0, startup_s=20.0, process_s=20.0)


class ProduceReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the producer subprocess did: counts and seconds of single and bulk enqueues."""

    single_n: int
    single_s: float
    bulk_n: int = 0
    bulk_s: float = 0.0


class PeerResult(msgspec.Struct, kw_only=True):
    """One peer at one concurrency mode. Rates are messages per second."""

    peer: str
    version: str
    mode: str
    concurrency: int
    worker: str
    n: int
    job: str = jobs.NOOP
    enqueued: int = 0
    enqueue_rate: float = 0.0
    bulk_enqueue_rate: float | None = None
    bulk_api: str | None = None
    processed: int = 0
    process_rate: float = 0.0
    startup_s: float = 0.0
    wall_s: float = 0.0
    partial: bool = False
    error: str | None = None
    ordering: str = ORDERING_NOTE
    extra: Extra = msgspec.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every enqueued message processed, none lost, within the budget."""
        return self.error is None and not self.partial and self.processed >= self.enqueued > 0

    @property
    def setting(self) -> str:
        """The mode and its concurrency, ``default (8)`` (just the mode when never started)."""
        return f"{self.mode} ({self.concurrency})" if self.concurrency else self.mode

    @property
    def status(self) -> str:
        """``ok``, ``partial`` (a budget cut it; its numbers stand), ``MISSING`` or ``FAILED``
        (no numbers: the library is not installed, or the run broke or processed nothing)."""
        if self.error is not None:
            return MISSING if self.version == NOT_INSTALLED else FAILED
        if self.processed == 0:
            return FAILED
        return "partial" if self.partial else "ok"

    @property
    def why(self) -> str:
        """Why the status is not ``ok``, in one line ("" when it is)."""
        if self.error is not None:
            return error_summary(self.error)
        if self.processed == 0:
            return f"0 of {self.n:,} processed"
        if not self.partial:
            return ""
        why = f"{self.processed:,} of {self.n:,} processed"
        if "budget_s" in self.extra:
            why += f" within the {self.extra['budget_s']:g} s budget"
        if self.extra.get("enqueue_partial"):
            why += f"; the producer enqueued {self.enqueued:,} by its deadline"
        return why


ProduceFn = Callable[[str, list[dict[str, Any]], list[dict[str, Any]], float], ProduceReport]
WorkFn = Callable[[str, int, str], None]
ArgvFn = Callable[[str, int, str], list[str]]


def python_module_argv(module: str) -> ArgvFn:
    """Worker argv running ``python -m module work --concurrency C --mode M``."""

    def argv(_url: str, concurrency: int, mode: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            module,
            "work",
            "--concurrency",
            str(concurrency),
            "--mode",
            mode,
        ]

    return argv


@dataclass(frozen=True)
class PeerSpec:
    """How to run one peer: its package, concurrency settings and subprocess commands."""

    name: str
    module: str
    distribution: str
    default_concurrency: int
    high_concurrency: int
    worker_desc: Callable[[int, str], str]
    bulk_api: str | None = None
    worker_argv: ArgvFn | None = None
    notes: str = ""
    stop_timeout: float = _STOP_TIMEOUT
    has_concurrency: bool = True
    """False for a worker that runs one job at a time whatever it is told (rq)."""

    def concurrency(self, mode: str, wanted: int | None = None) -> int:
        """The mode's concurrency, or ``wanted`` where the peer has a concurrency setting."""
        if wanted is not None and self.has_concurrency:
            return wanted
        return self.high_concurrency if mode == "high" else self.default_concurrency

    def argv(self, url: str, concurrency: int, mode: str) -> list[str]:
        build = self.worker_argv or python_module_argv(self.module)
        return build(url, concurrency, mode)

    def version(self) -> str:
        return installed_version(self.distribution)


def _env(url: str, concurrency: int, mode: str, job: jobs.Job) -> dict[str, str]:
    env = dict(os.environ)
    env[counter.URL_ENV] = url
    env[jobs.CONCURRENCY_ENV] = str(concurrency)
    env["BENCH_MODE"] = mode
    env.update(job.env())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _tail(path: Path, size: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes], timeout: float = _STOP_TIMEOUT) -> str:
    """Stop a process started in its own session, with all its children; say how."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of an exited leader
        return "exited"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    how = "SIGTERM"
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        how = "SIGKILL"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return how


def _produce(
    spec: PeerSpec, url: str, n: int, mode: str, budget: Budget, logdir: Path, job: jobs.Job
) -> ProduceReport:
    bulk_n = n // 2 if spec.bulk_api else 0
    deadline = time.time() + budget.produce_s
    argv = [
        sys.executable,
        "-m",
        spec.module,
        "produce",
        "--n",
        str(n - bulk_n),
        "--bulk-n",
        str(bulk_n),
        "--deadline",
        repr(deadline),
    ]
    log = logdir / "producer.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=_env(url, 0, mode, job),
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=budget.produce_s + 60)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise RuntimeError(f"producer did not finish: {_tail(log, 700)}") from None
        finally:
            _stop(proc)
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(_PRODUCE_MARK):
            return msgspec.json.decode(line[len(_PRODUCE_MARK) :], type=ProduceReport)
    raise RuntimeError(f"producer failed (exit {proc.returncode}): {_tail(log, 700)}")


def run_peer(
    spec: PeerSpec,
    url: str,
    n: int,
    mode: ConcurrencyMode = "default",
    budget: Budget | None = None,
    *,
    log_dir: Path | None = None,
    job: jobs.Job | None = None,
    concurrency: int | None = None,
) -> PeerResult:
    """Enqueue ``n`` messages, drain them with one worker process at ``mode`` (or at
    ``concurrency`` where the peer has that setting) running ``job`` (the no-op job by
    default); see module doc."""
    budget = budget or default_budget()
    job = job or jobs.Job()
    concurrency = spec.concurrency(mode, concurrency)
    result = PeerResult(
        peer=spec.name,
        version=spec.version(),
        mode=mode,
        concurrency=concurrency,
        worker=spec.worker_desc(concurrency, mode),
        n=n,
        job=job.kind,
        bulk_api=spec.bulk_api,
    )
    if spec.notes:
        result.extra["notes"] = spec.notes
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.callback(client.close)
        logdir = log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bp-")))
        logdir.mkdir(parents=True, exist_ok=True)
        client.flushdb()
        try:
            report = _produce(spec, url, n, mode, budget, logdir, job)
        except RuntimeError as exc:
            result.error = str(exc)  # the label, then at most 700 characters of log
            result.wall_s = time.perf_counter() - started
            return result
        result.enqueued = report.single_n + report.bulk_n
        if report.single_s > 0:
            result.enqueue_rate = report.single_n / report.single_s
        if report.bulk_n and report.bulk_s > 0:
            result.bulk_enqueue_rate = report.bulk_n / report.bulk_s
        if result.enqueued < n:
            result.partial = True
            result.extra["enqueue_partial"] = True
        _drain(spec, url, result, budget, client, logdir, job)
    result.wall_s = time.perf_counter() - started
    return result


def _drain(
    spec: PeerSpec,
    url: str,
    result: PeerResult,
    budget: Budget,
    client: redis.Redis,
    logdir: Path,
    job: jobs.Job,
) -> None:
    """Start the worker, wait for the count (bounded), stop the worker, fill ``result``."""
    log = logdir / "worker.log"
    argv = spec.argv(url, result.concurrency, result.mode)
    with log.open("wb") as out:
        spawned = time.time()
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(url, result.concurrency, result.mode, job),
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        try:
            died, snapshot = _wait_for_count(proc, client, result.enqueued, spawned, budget, result)
        finally:
            result.extra["stopped_by"] = _stop(proc, min(spec.stop_timeout, budget.stop_s))
    final = counter.read(client)
    # A run cut at its budget is measured at the cut: a worker may go on while it stops.
    processed, first, last = snapshot if result.partial else final
    result.processed = processed
    if result.partial and final[0] > processed:
        result.extra["processed_by_stop"] = final[0]
    elif not result.partial and final[0] > result.enqueued:
        result.extra["duplicates"] = final[0] - result.enqueued
    if processed < result.enqueued:
        result.partial = True
    if first is not None:
        result.startup_s = max(first - spawned, 0.0)
        if last is not None and last > first:
            result.process_rate = processed / (last - first)
            result.extra["rate_incl_startup"] = round(processed / (last - spawned), 1)
    if died and processed < result.enqueued:
        result.error = f"worker exited early: {_tail(log, 800)}"
    elif processed == 0:
        result.error = f"no job processed within {budget.startup_s:.0f} s: {_tail(log, 800)}"


def _wait_for_count(
    proc: subprocess.Popen[bytes],
    client: redis.Redis,
    target: int,
    spawned: float,
    budget: Budget,
    result: PeerResult,
) -> tuple[bool, tuple[int, float | None, float | None]]:
    """Poll the processed count until ``target`` or the budget: (worker died, last count read)."""
    startup_deadline = spawned + budget.startup_s
    deadline: float | None = None
    while True:
        snapshot = counter.read(client)
        processed, first, _last = snapshot
        if proc.poll() is not None:
            return True, snapshot
        now = time.time()
        if processed >= target:
            return False, snapshot
        if deadline is None and first is not None:
            deadline = first + budget.process_s
        if deadline is None and now > startup_deadline:
            return False, snapshot
        if deadline is not None and now > deadline:
            result.partial = True
            result.extra["budget_s"] = budget.process_s
            return False, snapshot
        time.sleep(_POLL)


# -- inside the subprocesses ----------------------------------------------------------------


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def timed_loop(
    items: Sequence[Any], deadline: float, send: Callable[[Any], object]
) -> tuple[int, float]:
    """Call ``send`` for each item until done or ``deadline`` (epoch s): (count, seconds)."""
    done = 0
    started = time.perf_counter()
    for item in items:
        if time.time() > deadline:
            break
        send(item)
        done += 1
    return done, time.perf_counter() - started


async def timed_loop_async(
    items: Sequence[Any], deadline: float, send: Callable[[Any], Any]
) -> tuple[int, float]:
    """Await ``send`` for each item until done or ``deadline`` (epoch s): (count, seconds)."""
    done = 0
    started = time.perf_counter()
    for item in items:
        if time.time() > deadline:
            break
        await send(item)
        done += 1
    return done, time.perf_counter() - started


def bulk_chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``items`` in bulk-API batches of :data:`BULK_BATCH`."""
    return _chunks(items, BULK_BATCH)


def concurrency_from_env(default: int = 1) -> int:
    """The concurrency the harness asked for (for worker modules configured at import)."""
    return int(os.environ.get(jobs.CONCURRENCY_ENV, "0")) or default


def redis_url() -> str:
    """The Redis URL the harness passed down (a placeholder when imported elsewhere)."""
    return os.environ.get(counter.URL_ENV, "redis://127.0.0.1:6379/0")


def peer_main(produce: ProduceFn, work: WorkFn | None = None) -> None:
    """``python -m bench.peers.X produce|work ...``: the two subprocess entry points."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--bulk-n", type=int, default=0)
    p.add_argument("--deadline", type=float, required=True)
    w = sub.add_parser("work")
    w.add_argument("--concurrency", type=int, required=True)
    w.add_argument("--mode", default="default")
    args = parser.parse_args()
    url = redis_url()
    if args.command == "produce":
        single = [payload(i) for i in range(args.n)]
        bulk = [payload(args.n + i) for i in range(args.bulk_n)]
        report = produce(url, single, bulk, args.deadline)
        sys.stdout.write(_PRODUCE_MARK + msgspec.json.encode(report).decode() + "\n")
        sys.stdout.flush()
        return
    if work is None:
        parser.error("this peer's worker runs through its own CLI")
    work(url, args.concurrency, args.mode)
