"""Fixtures: a real redis-server per test, settings pointing at it, local HTTP providers
and worker processes, all torn down (processes killed) when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from relayq.ops.local_provider import ProviderBehaviour, ProviderThread
from relayq.streams.keys import Keys
from relayq.streams.redis_server import RedisServer
from relayq.streams.settings import Settings
from tests.api_support import ApiServer, start_api_server
from tests.support import WorkerPool

ProviderFactory = Callable[..., ProviderThread]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server process of its own on a free 127.0.0.1 port (no AOF: tests only)."""
    server = RedisServer(tmp_path / "redis", appendonly=False).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server this test stops (the shared fixture's server stays up)."""
    server = RedisServer(tmp_path / "own-redis", appendonly=False).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_settings(settings: Settings, own_redis: RedisServer) -> Settings:
    return settings.replace(redis_url=own_redis.url)


@pytest.fixture
def settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    """Fast settings: short lease and send timeout, quick backoff, metrics out of the way."""
    return Settings(
        redis_url=redis_server.url,
        data_dir=str(tmp_path / "data"),
        namespace="rq",
        partitions=8,
        lease_ttl=3.0,
        send_timeout=0.8,
        backoff_base=0.05,
        backoff_max=1.0,
        shutdown_grace=5.0,
        metrics_interval=3600.0,
        # Flow control off unless a test turns it on (tests/test_flow_*.py do).
        tenant_cap=0,
        global_rate=0.0,
    )


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return Keys.from_settings(settings)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A blocking client for looking at (and tampering with) what Redis holds."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make_provider() -> Iterator[ProviderFactory]:
    """Start local HTTP providers with the given behaviour; all stopped at teardown."""
    started: list[ProviderThread] = []

    def make(**behaviour: float | int | None) -> ProviderThread:
        provider = ProviderThread(ProviderBehaviour(**behaviour)).start()  # type: ignore[arg-type]
        started.append(provider)
        return provider

    try:
        yield make
    finally:
        for provider in started:
            provider.stop()


@pytest.fixture
def provider(make_provider: ProviderFactory) -> ProviderThread:
    """A well-behaved provider: accepts everything at once."""
    return make_provider()


@pytest.fixture
def api_server(settings: Settings, tmp_path: Path) -> Iterator[ApiServer]:
    """A real ``relayq api`` process on the test's namespace, with an admin key; stopped
    (by its pid) at teardown, its log printed."""
    server = start_api_server(settings, tmp_path / "api")
    try:
        yield server
    finally:
        server.stop()
        print(f"--- relayq api log:\n{server.log()[-4000:]}")


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[WorkerPool]:
    """Worker processes (``relayq worker``) on ``settings``; every one is killed at teardown.

    Their logs are printed at teardown, so pytest shows them when a test fails.
    """
    pool = WorkerPool(settings, tmp_path / "workers")
    try:
        yield pool
    finally:
        pool.kill_all()
        if pool.processes:
            print(pool.logs())
