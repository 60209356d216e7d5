"""Ceilings and peers only, standalone: ``python -m bench.peers_only [--quick]``.

Starts its own redis-server (127.0.0.1, free port, no persistence), measures the raw ceilings,
then every peer at its default and at a high concurrency, prints tables and can write the
results as JSON (``--json PATH``). ``--quick`` (N=2,000, short budgets) takes about 70 s on a
2-core machine; the default (N=10,000) about 5 minutes. relayq's own scenarios and RESULTS.md
belong to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import redis
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.ceilings import CeilingResult, run_ceilings
from bench.peers import MODES, ORDERING_NOTE, PEERS, PeerResult, default_budget, run_peer
from relayq.streams.redis_server import RedisServer

__all__ = ("PeersOnlyReport", "ceilings_table", "main", "peers_table", "run", "workers_table")

QUICK_N = 2_000
DEFAULT_N = 10_000
CONSUME_CEILING = "XREADGROUP"


class PeersOnlyReport(msgspec.Struct, kw_only=True):
    """Everything one run measured, as plain data."""

    started_at: str
    seconds: float
    quick: bool
    n: int
    python: str
    redis_version: str
    machine: str
    ceilings: list[CeilingResult]
    peers: list[PeerResult]


def _redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()


def run(
    *,
    quick: bool = False,
    n: int | None = None,
    peers: Sequence[str] = tuple(PEERS),
    modes: Sequence[str] = MODES,
    ceilings: bool = True,
    console: Console | None = None,
) -> PeersOnlyReport:
    """Start a redis-server, run ceilings and peers, stop it; progress goes to ``console``."""
    console = console or Console(stderr=True)
    n = n or (QUICK_N if quick else DEFAULT_N)
    budget = default_budget(quick)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    ceiling_results: list[CeilingResult] = []
    peer_results: list[PeerResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        server = RedisServer(Path(tmp), appendonly=False).start()
        try:
            version = _redis_version(server.url)
            console.log(f"redis-server {version} on 127.0.0.1:{server.port} (no persistence)")
            if ceilings:
                with console.status("ceilings: redis-benchmark and redis.asyncio loops"):
                    ceiling_results = run_ceilings(server.url, server.port, quick=quick)
                for c in ceiling_results:
                    measured = f"{c.failure}, {c.why}" if c.failure else f"{c.rate:,.0f} {c.unit}"
                    console.log(f"ceiling {c.name}: {escape(measured)}")
            for name in peers:
                for mode in modes:
                    label = f"{name} ({mode} concurrency): enqueue {n:,} then drain"
                    with console.status(label):
                        result = run_peer(name, server.url, n, mode, budget)  # type: ignore[arg-type]
                    peer_results.append(result)
                    console.log(
                        f"{name} {mode}: {result.status}, {result.processed:,}/"
                        f"{result.enqueued:,} at {result.process_rate:,.0f} msgs/s "
                        f"({result.wall_s:.1f} s)"
                    )
        finally:
            server.stop()
    return PeersOnlyReport(
        started_at=started_at,
        seconds=time.perf_counter() - started,
        quick=quick,
        n=n,
        python=platform.python_version(),
        redis_version=version,
        machine=f"{platform.machine()}, {os.cpu_count() or 1} CPUs, {platform.platform()}",
        ceilings=ceiling_results,
        peers=peer_results,
    )


def _rate(value: float | None) -> str:
    return "-" if not value else f"{value:,.0f}"


def ceilings_table(results: Sequence[CeilingResult]) -> Table:
    table = Table(title="Ceilings (raw Redis, same server)")
    for column in ("ceiling", "rate", "unit", "n", "s"):
        table.add_column(column, justify="left" if column in ("ceiling", "unit") else "right")
    for c in results:
        if c.failure:
            table.add_row(f"{c.name}: {c.failure}, {escape(c.why)}", "-", c.unit, "-", "-")
            continue
        name = c.name + (" (partial)" if c.partial else "")
        table.add_row(name, _rate(c.rate), c.unit, f"{c.n:,}", f"{c.seconds:.2f}")
    return table


def peers_table(results: Sequence[PeerResult], consume_ceiling: float | None = None) -> Table:
    """Rates per peer and mode; 'of ceiling' is msgs/s over the raw consume ceiling."""
    table = Table(title="Peers: one worker process, no-op job, ~200-byte payload (msgs/s)")
    columns = ("peer", "mode (conc.)", "enqueue/s", "bulk/s", "processed", "msgs/s",
               "of ceiling", "startup s", "status", "order/conv.")  # fmt: skip
    for column in columns:
        left = column in ("peer", "mode (conc.)", "status", "order/conv.")
        table.add_column(column, justify="left" if left else "right")
    for r in results:
        share = "-"
        if consume_ceiling and r.process_rate:
            share = f"{r.process_rate / consume_ceiling:.1%}"
        status = f"{r.status}: {escape(r.why)}" if r.why else r.status
        table.add_row(
            r.peer, r.setting, _rate(r.enqueue_rate),
            _rate(r.bulk_enqueue_rate), f"{r.processed:,}/{r.enqueued:,}",
            _rate(r.process_rate), share, f"{r.startup_s:.1f}", status,
            "none" if r.ordering == ORDERING_NOTE else r.ordering,
        )  # fmt: skip
    return table


def workers_table(results: Sequence[PeerResult]) -> Table:
    """What ran for each peer: version, worker command per mode, bulk API, notes."""
    table = Table(title="Peer setups")
    for column in ("peer", "version", "mode", "worker", "bulk API", "notes"):
        table.add_column(column, overflow="fold")
    for r in results:
        notes = str(r.extra.get("notes", ""))
        table.add_row(r.peer, r.version, r.mode, r.worker, r.bulk_api or "none", notes)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers_only", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, short budgets (~70 s)")
    parser.add_argument("--n", type=int, help=f"messages per peer run (default {DEFAULT_N:,})")
    parser.add_argument("--peers", help=f"comma-separated subset of: {', '.join(PEERS)}")
    parser.add_argument("--modes", default="default,high", help="default,high or one of them")
    parser.add_argument("--no-ceilings", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    peers = args.peers.split(",") if args.peers else list(PEERS)
    unknown = [p for p in peers if p not in PEERS]
    modes = args.modes.split(",")
    if unknown or any(m not in MODES for m in modes):
        parser.error(f"unknown peer or mode: {unknown or modes}")
    console = Console() if sys.stdout.isatty() else Console(width=150)
    report = run(
        quick=args.quick,
        n=args.n,
        peers=peers,
        modes=modes,
        ceilings=not args.no_ceilings,
        console=console,
    )
    if report.ceilings:
        console.print(ceilings_table(report.ceilings))
    consume = next((c.rate for c in report.ceilings if CONSUME_CEILING in c.name), None)
    console.print(peers_table(report.peers, consume))
    console.print(workers_table(report.peers))
    console.print(
        f"N={report.n:,} per run, Python {report.python}, Redis {report.redis_version}, "
        f"{report.machine}; {report.seconds:.0f} s. 'of ceiling' = msgs/s over the redis.asyncio "
        "XREADGROUP+XACK consume ceiling. Peers give no per-conversation order."
    )
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
