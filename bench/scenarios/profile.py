"""py-spy profiles of one worker process: the no-op backlog (flow control off and on) and a
steady 2,000 msg/s. Where the worker's CPU goes per message."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.profile_summary import summarise
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario
from bench.scenarios.flow_control import HIGH_LIMITS

__all__ = ("SCENARIO", "VARIANTS")

_RATE_HZ = 250
_STEADY_RATE = 2_000
VARIANTS: tuple[tuple[str, dict[str, str], bool], ...] = (
    ("backlog, flow control off", {}, False),
    ("backlog, flow control on (limits high)", HIGH_LIMITS, False),
    (f"steady {_STEADY_RATE:,} msg/s (open loop)", {}, True),
)
"""(label, worker environment, steady?) of each profile."""


def _py_spy() -> str | None:
    """py-spy beside this interpreter (an unactivated virtualenv), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _spy(group: ProcessGroup, pid: int, workdir: Path) -> subprocess.Popen[bytes]:
    py_spy = _py_spy() or "py-spy"
    argv = [py_spy, "record", "--pid", str(pid), "--rate", str(_RATE_HZ), "--gil",
            "--format", "raw", "--output", str(workdir / "profile.txt")]  # fmt: skip
    return group.spawn(argv, log=workdir / "py-spy.log")


def _load(ctx: BenchContext, fleet: Fleet, group: ProcessGroup, env: dict[str, str],
          steady: bool, workdir: Path) -> tuple[int, subprocess.Popen[bytes]]:  # fmt: skip
    """Put the load on; py-spy attaches to a running worker (it cannot to a stopped one)."""
    if steady:
        spy = _spy(group, fleet.procs[0].pid, workdir)
        time.sleep(1.0)
        intended = str(workdir / "intended.json")
        sent = ctx.child("bench.open_loop:open_loop", timeout=60, url=ctx.url, rate=_STEADY_RATE,
                         seconds=ctx.sizes.latency_seconds, out=intended)  # fmt: skip
        return int(sent["sent"]), spy
    n = ctx.sizes.backlog
    fleet.pause()
    ctx.child("bench.relayq_produce:fill", timeout=120, url=ctx.url, n=n, ids=False, env=env)
    fleet.resume()
    return n, _spy(group, fleet.procs[0].pid, workdir)


def _one(ctx: BenchContext, out: RunOutput, label: str, env: dict[str, str], steady: bool) -> None:
    ctx.fresh()
    workdir = ctx.step_dir("profile")
    with ProcessGroup() as group:
        ctx.status(f"profile {label}: starting a worker")
        fleet = Fleet(group, ctx.url, workdir, env=env).start()
        cpu_before, started = fleet.cpu_seconds(), time.monotonic()
        ctx.status(f"profile {label}: under py-spy")
        n, spy = _load(ctx, fleet, group, env, steady, workdir)
        fleet.wait_for(n, timeout=120)
        cpu, wall = fleet.cpu_seconds() - cpu_before, time.monotonic() - started
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            group.stop(spy)
        fleet.stop()
    run = fleet.result(n)
    out.add(label, "msgs/s", run.rate, "msgs/s")
    out.add(label, "worker CPU us/msg", 1e6 * cpu / max(run.delivered, 1))
    if steady:
        out.add(label, "worker CPU busy", cpu / wall, "%")
    raw = workdir / "profile.txt"
    if raw.exists():
        summary = summarise(raw)
        out.add(label, "samples", summary.samples)
        profiles = out.extra.setdefault("profiles", {})
        assert isinstance(profiles, dict)
        profiles[label] = msgspec.to_builtins(summary)
    else:
        out.notes.append(
            f"{label}: py-spy wrote nothing: {(workdir / 'py-spy.log').read_text()[-300:]}"
        )


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    if _py_spy() is None:
        out.notes.append("py-spy not found (pip install py-spy): no profile")
        return out
    for label, env, steady in VARIANTS[:1] if ctx.quick else VARIANTS:
        _one(ctx, out, label, env, steady)
    return out


SCENARIO = Scenario(
    name="profile",
    title="Profile of the worker's hot path",
    description=(
        f"py-spy record --gil ({_RATE_HZ} Hz: samples of the thread holding the GIL, so the "
        "CPU the worker's Python spends) of one `relayq worker`: delivering the no-op "
        "backlog with flow control off, and on with limits never reached (attached right "
        "after the backlog was written, so startup is not in it), and at a steady "
        f"{_STEADY_RATE:,} msg/s from the open-loop producer. Sampling slows the worker a "
        "little; 'worker CPU us/msg' is the worker's CPU time (/proc) per delivered message."
    ),
    run=_run,
    repeats=lambda _sizes: 1,
    in_smoke=False,
)
