"""A py-spy profile of one worker process delivering the no-op backlog (the hot path)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import msgspec

from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.profile_summary import summarise
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario

__all__ = ("SCENARIO",)

_RATE_HZ = 250


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        out.notes.append("py-spy not found (pip install py-spy): no profile")
        return out
    n = ctx.sizes.backlog
    ctx.fresh()
    workdir = ctx.step_dir("profile")
    raw = workdir / "worker.collapsed.txt"
    with ProcessGroup() as group:
        ctx.status("profile: starting a worker")
        fleet = Fleet(group, ctx.url, workdir).start()
        fleet.pause()
        ctx.child("bench.relayq_produce:fill", timeout=120, url=ctx.url, n=n, ids=False)
        argv = [py_spy, "record", "--pid", str(fleet.procs[0].pid), "--rate", str(_RATE_HZ),
                "--format", "raw", "--output", str(raw)]  # fmt: skip
        spy = group.spawn(argv, log=workdir / "py-spy.log")
        time.sleep(1.0)  # let py-spy attach
        fleet.resume()
        ctx.status(f"profile: delivering {n:,} under py-spy")
        fleet.wait_for(n, timeout=120)
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            group.stop(spy)
        fleet.stop()
    run = fleet.result(n)
    out.add("1 worker under py-spy", "msgs/s", run.rate, "msgs/s")
    if raw.exists():
        summary = summarise(raw)
        out.add("1 worker under py-spy", "samples", summary.samples)
        out.extra["profile"] = msgspec.to_builtins(summary)
    else:
        out.notes.append("py-spy wrote no profile: " + (workdir / "py-spy.log").read_text()[-300:])
    return out


SCENARIO = Scenario(
    name="profile",
    title="Profile of the worker's hot path",
    description=(
        f"py-spy record ({_RATE_HZ} Hz, attached once the worker owned its partitions and "
        "the backlog was written, so startup is not in it) of one `relayq worker` "
        "delivering the no-op backlog. Sampling slows the worker a little."
    ),
    run=_run,
    repeats=lambda _sizes: 1,
    in_smoke=False,
)
