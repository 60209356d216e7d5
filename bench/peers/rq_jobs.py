"""The RQ peer's jobs, in a module of their own: rq's default worker imports it in every forked
work horse, so it imports nothing the worker has not loaded already (rq, redis); the HTTP
job loads its client on first use."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from rq import get_current_job

from bench.peers.counter import hit_direct

if TYPE_CHECKING:
    from bench.peers.posters import SyncPoster


def noop(payload: dict[str, Any]) -> None:
    """A no-op job that counts itself with one round trip on the worker's connection."""
    job = get_current_job()
    assert job is not None
    hit_direct(job.connection)


@functools.cache
def _poster() -> SyncPoster:
    """This process's client (its import loads aiohttp and httpx: not in a no-op horse)."""
    from bench.peers.posters import SyncPoster

    return SyncPoster()


def http(payload: dict[str, Any]) -> None:
    """The HTTP job: POST the payload to the local provider, then count as :func:`noop`."""
    _poster().post(payload)
    noop(payload)
