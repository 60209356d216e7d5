"""The RQ peer's job, in a module of its own: rq's default worker imports it in every forked
work horse, so it imports nothing the worker has not loaded already (rq, redis)."""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from bench.peers.counter import hit_direct


def noop(payload: dict[str, Any]) -> None:
    """A no-op job that counts itself with one round trip on the worker's connection."""
    job = get_current_job()
    assert job is not None
    hit_direct(job.connection)
