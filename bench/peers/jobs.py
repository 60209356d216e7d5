"""The two jobs a peer runs: the no-op job, and the HTTP job that POSTs its message as JSON
to the local provider (``relayq provider``); both count themselves (:mod:`bench.peers.counter`).

A peer's worker registers both jobs, named ``noop`` and ``http``; the harness tells the
producer subprocess which one to enqueue, and the HTTP job where to POST, through the
environment (:meth:`Job.env` there, :func:`current` here). The HTTP clients the jobs POST
with are in :mod:`bench.peers.posters`; this module stays cheap to import.
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

import msgspec

__all__ = (
    "CONCURRENCY_ENV",
    "HTTP",
    "KIND_ENV",
    "NOOP",
    "URL_ENV",
    "Job",
    "JobKind",
    "connections",
    "current",
    "webhook_body",
)

JobKind = Literal["noop", "http"]
NOOP: JobKind = "noop"
HTTP: JobKind = "http"
KIND_ENV = "BENCH_JOB"
URL_ENV = "BENCH_PROVIDER_URL"
CONCURRENCY_ENV = "BENCH_CONCURRENCY"
_RECIPIENT = "+15550001"


class Job(msgspec.Struct, frozen=True):
    """Which job a peer run enqueues, and where the HTTP job POSTs."""

    kind: JobKind = NOOP
    url: str = ""

    def env(self) -> dict[str, str]:
        """The environment that hands this job to a peer's subprocesses."""
        return {KIND_ENV: self.kind, URL_ENV: self.url}


def connections() -> int:
    """The jobs the harness told this worker to run at once (at least 1): how many
    connections its HTTP client keeps."""
    return max(int(os.environ.get(CONCURRENCY_ENV, "0")), 1)


def current() -> Job:
    """The job the harness asked this subprocess for (the no-op job when it said nothing)."""
    kind = os.environ.get(KIND_ENV, NOOP)
    if kind not in (NOOP, HTTP):
        raise ValueError(f"{KIND_ENV}={kind!r}: expected {NOOP!r} or {HTTP!r}")
    return Job(kind=HTTP if kind == HTTP else NOOP, url=os.environ.get(URL_ENV, ""))


def webhook_body(payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON a job POSTs for a peer's ~200-byte message: the fields the local provider
    records (as relayq's webhook deliverer sends them), and the text."""
    return {
        "id": f"peer-{payload['seq']}",
        "tenant": payload["tenant_id"],
        "conversation": payload["conversation_id"],
        "recipient": _RECIPIENT,
        "created_ms": int(time.time() * 1000),
        "payload": {"text": payload["text"]},
    }
