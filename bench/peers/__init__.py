"""Python peers of relayq, run the same way on the same Redis: see :mod:`bench.peers.harness`.

Each peer module exposes ``SPEC`` (a :class:`~bench.peers.harness.PeerSpec`) and
``run(url, n, concurrency_mode, budget)``; this package keeps the registry and
:func:`run_peer`, which loads a peer's module only when it runs (their libraries are the
``bench`` extra: ``pip install -e '.[bench]'``). Peers give no per-conversation order.

Importing this package is cheap on purpose (the harness loads on first use): rq's default
worker imports the job module, and so this package, in every forked work horse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.peers.harness import Budget, ConcurrencyMode, PeerResult, PeerSpec
    from bench.peers.jobs import Job

__all__ = (
    "MODES",
    "ORDERING_NOTE",
    "PEERS",
    "Budget",
    "ConcurrencyMode",
    "PeerResult",
    "PeerSpec",
    "default_budget",
    "load_spec",
    "run_peer",
)

#: Peer name (its library's distribution name) -> module holding its SPEC, producer and worker.
PEERS: dict[str, str] = {
    "bullmq": "bench.peers.bullmq",
    "arq": "bench.peers.arq",
    "saq": "bench.peers.saq",
    "taskiq-redis": "bench.peers.taskiq_redis",
    "faststream": "bench.peers.faststream",
    "dramatiq": "bench.peers.dramatiq",
    "celery": "bench.peers.celery",
    "rq": "bench.peers.rq",
}

MODES: tuple[ConcurrencyMode, ...] = ("default", "high")

_FROM_HARNESS = ("ORDERING_NOTE", "Budget", "ConcurrencyMode", "PeerResult", "PeerSpec",
                 "default_budget")  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _FROM_HARNESS:
        return getattr(importlib.import_module("bench.peers.harness"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_spec(name: str) -> PeerSpec:
    """The peer's spec (imports its module, and so its library)."""
    try:
        module = importlib.import_module(PEERS[name])
    except KeyError:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}") from None
    spec: PeerSpec = module.SPEC
    return spec


def run_peer(
    name: str,
    url: str,
    n: int,
    concurrency_mode: ConcurrencyMode = "default",
    budget: Budget | None = None,
    *,
    job: Job | None = None,
    concurrency: int | None = None,
) -> PeerResult:
    """Enqueue ``n`` ~200-byte messages with peer ``name``, drain them with one worker process
    running ``job`` (the no-op job by default) at ``concurrency`` (where the peer has that
    setting; else at ``concurrency_mode``'s).

    Returns a :class:`PeerResult` (with ``error`` set, not raised, when the peer's library is
    missing or fails to import: its ``version`` then says whether it is installed);
    ``partial`` when the time budget cut the run short.
    """
    from bench.peers import harness, jobs

    try:
        spec = load_spec(name)
    except ImportError as exc:
        return harness.PeerResult(
            peer=name, version=harness.installed_version(name), mode=concurrency_mode,
            concurrency=0, worker="", n=n, job=job.kind if job else jobs.NOOP,
            error=f"import failed: {exc}",
        )  # fmt: skip
    return harness.run_peer(spec, url, n, concurrency_mode, budget, job=job,
                            concurrency=concurrency)  # fmt: skip
