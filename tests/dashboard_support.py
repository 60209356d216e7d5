"""Shared by the dashboard tests: a known state in a namespace (messages delivered,
dead-lettered and waiting, for two tenants, one payload holding markup), and a signed-in
dashboard session over HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator

import httpx
import redis

from relayq.producers import SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.conftest import ProviderFactory
from tests.support import WorkerPool

__all__ = ("HOSTILE", "KnownState", "csrf_of", "dlq_length", "make_known_state", "signed_in")

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
"""A payload text that runs script if a page ever shows it unescaped."""

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclasses.dataclass
class KnownState:
    delivered: list[str]
    """acme's, delivered."""
    dead: dict[str, list[str]]
    """Per tenant, the ids dead-lettered (bolt's payloads hold ``HOSTILE``)."""
    waiting: list[str]
    """acme's, sent after the workers stopped."""


def _send(settings: Settings, tenant: str, count: int, text: str) -> list[str]:
    with SyncProducer(settings) as producer:
        return [
            producer.send(
                tenant=tenant, conversation=f"{tenant}-conv", recipient=f"{tenant}-rcpt",
                payload={"text": text, "n": n}, metadata={"note": text},
            )
            for n in range(count)
        ]  # fmt: skip


def make_known_state(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> KnownState:
    """bolt: 3 dead-lettered, acme: 1 dead-lettered, 5 delivered, 4 waiting."""
    once = settings.replace(max_attempts=1)
    dead = {"bolt": _send(once, "bolt", 3, HOSTILE), "acme": _send(once, "acme", 1, "acme-dead")}
    failing = make_provider(fail_rate=1.0)
    assert workers.start(failing.url, burst=True, settings=once).wait(timeout=60) == 0
    delivered = _send(settings, "acme", 5, "acme-ok")
    assert workers.start(make_provider().url, burst=True, settings=once).wait(timeout=60) == 0
    waiting = _send(settings, "acme", 4, "acme-waiting")
    return KnownState(delivered=delivered, dead=dead, waiting=waiting)


def dlq_length(client: redis.Redis, keys: Keys) -> int:
    return sum(int(client.xlen(keys.dead_letter(p))) for p in range(keys.partitions))


@contextlib.contextmanager
def signed_in(api_server: ApiServer, key: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in to the dashboard with ``key`` (its session cookie set)."""
    with httpx.Client(base_url=api_server.url, timeout=10) as client:
        done = client.post("/login", data={"key": key, "next": "/"})
        assert done.status_code == 303, done.text
        yield client


def csrf_of(client: httpx.Client, path: str = "/dead-letters") -> str:
    """The CSRF token a page of this session carries."""
    found = _CSRF.search(client.get(path).text)
    assert found is not None
    return found[1]
