"""send() never hangs: every Redis client relayq makes has explicit connect and read
timeouts (RELAYQ_REDIS_CONNECT_TIMEOUT_SECONDS, RELAYQ_REDIS_TIMEOUT_SECONDS), so a silent
peer, a frozen redis-server or a host that never completes the connection ends in
RedisUnavailableError in time, with the redis-py this venv has and with the oldest one
pyproject allows (redis-py 5.0 sets no timeout of its own: it hung for good). The worker's
blocking stream reads stay correct with a read timeout shorter than their block."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from relayq.ops.local_provider import ProviderThread
from relayq.producers import Producer, SyncProducer
from relayq.streams.errors import ConfigurationError, RedisUnavailableError
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_sync_client
from relayq.streams.redis_server import RedisServer
from relayq.streams.settings import ENVIRONMENT, Settings
from tests.support import (
    WorkerPool,
    all_ids,
    conversation_requests,
    delivered_ids,
    pending_total,
    send_all,
    wait_until,
)
from tests.venvs import cached_venv

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 0.5
"""The read and connect timeouts the tests configure."""
DOES_NOT_HANG = 5.0
"""Upper bound on a failing call (0.5 s; a worker's clients 1.5 s, with the 1 s blocking-read
allowance), plus room for two loaded cores. The point is that it ends at all."""
FIELDS: dict[str, Any] = {"tenant": "t1", "conversation": "c1", "recipient": "r1", "payload": {}}


# -- peers that never answer --------------------------------------------------------------


class SilentPeer:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by close()
                return
            self._connections.append(connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the blocked accept() (close alone does not)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        for connection in self._connections:
            connection.close()


class FullBacklog:
    """A listener whose accept queue is full (backlog 0, one connection never accepted):
    the kernel drops further SYNs, so a connect to it never completes."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=0)
        self._filler = socket.create_connection(self._listener.getsockname(), timeout=5)
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def close(self) -> None:
        self._filler.close()
        self._listener.close()


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[str]:
    """``server`` stopped with SIGSTOP (its kernel still accepts connections), its URL;
    SIGCONT on the way out, so the fixture can stop it."""
    pid = server.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield server.url
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture(params=["silent-peer", "frozen-redis"])
def unresponsive_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a peer that accepts and never answers, or of a SIGSTOPped redis-server."""
    if request.param == "silent-peer":
        peer = SilentPeer()
        try:
            yield peer.url
        finally:
            peer.close()
    else:
        with frozen(request.getfixturevalue("own_redis")) as url:
            yield url


def short_timeouts(url: str, tmp_path: Path, **changes: float) -> Settings:
    values: dict[str, Any] = {"redis_timeout": TIMEOUT, "redis_connect_timeout": TIMEOUT}
    values.update(changes)
    return Settings(redis_url=url, data_dir=str(tmp_path / "data"), **values)


def failure_of_sync_send(settings: Settings) -> tuple[RedisUnavailableError, float]:
    started = time.monotonic()
    with SyncProducer(settings) as producer, pytest.raises(RedisUnavailableError) as caught:
        producer.send(**FIELDS)
    return caught.value, time.monotonic() - started


async def failure_of_async_send(settings: Settings) -> tuple[RedisUnavailableError, float]:
    started = time.monotonic()
    async with Producer(settings) as producer:
        with pytest.raises(RedisUnavailableError) as caught:
            await producer.send(**FIELDS)
    return caught.value, time.monotonic() - started


def check_timed_out(error: RedisUnavailableError, seconds: float, url: str) -> None:
    assert seconds < DOES_NOT_HANG, f"send() took {seconds:.1f}s"
    assert f"{url} did not answer in time" in str(error), str(error)
    assert error.maybe_done  # the command may sit in a frozen Redis's socket buffer


# -- with this venv's redis-py ------------------------------------------------------------


def test_sync_send_to_a_peer_that_never_answers_raises_in_time(
    unresponsive_url: str, tmp_path: Path
) -> None:
    error, seconds = failure_of_sync_send(short_timeouts(unresponsive_url, tmp_path))
    check_timed_out(error, seconds, unresponsive_url)


async def test_send_to_a_peer_that_never_answers_raises_in_time(
    unresponsive_url: str, tmp_path: Path
) -> None:
    error, seconds = await failure_of_async_send(short_timeouts(unresponsive_url, tmp_path))
    check_timed_out(error, seconds, unresponsive_url)


async def test_a_connect_that_never_completes_ends_at_the_connect_timeout(
    tmp_path: Path,
) -> None:
    """The read timeout is 60 s here: only the connect timeout can end these calls."""
    backlog = FullBacklog()
    try:
        settings = short_timeouts(backlog.url, tmp_path, redis_timeout=60.0)
        failures = [failure_of_sync_send(settings), await failure_of_async_send(settings)]
    finally:
        backlog.close()
    for error, seconds in failures:
        assert seconds < DOES_NOT_HANG, f"send() took {seconds:.1f}s"
        assert f"could not connect to {backlog.url} in time" in str(error), str(error)
        assert not error.maybe_done  # no command was sent: a fallback may deliver directly


def test_the_timeouts_are_read_from_the_environment_and_checked() -> None:
    settings = Settings.from_env(
        {"RELAYQ_REDIS_TIMEOUT_SECONDS": "0.25", "RELAYQ_REDIS_CONNECT_TIMEOUT_SECONDS": "1.5"}
    )
    assert (settings.redis_timeout, settings.redis_connect_timeout) == (0.25, 1.5)
    assert (Settings().redis_timeout, Settings().redis_connect_timeout) == (5.0, 5.0)
    for variable in ("RELAYQ_REDIS_TIMEOUT_SECONDS", "RELAYQ_REDIS_CONNECT_TIMEOUT_SECONDS"):
        assert variable in ENVIRONMENT
        for bad in ("0", "-1", "inf", "soon"):
            with pytest.raises(ConfigurationError, match=variable):
                Settings.from_env({variable: bad})


def test_a_redis_url_that_is_no_url_is_a_configuration_error_without_the_password(
    tmp_path: Path,
) -> None:
    settings = Settings(redis_url="http://:hunter2@127.0.0.1:8080/", data_dir=str(tmp_path))
    with pytest.raises(ConfigurationError, match="is not a Redis URL") as caught:
        create_sync_client(settings)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="is not a Redis URL"):
        Producer(settings)


def test_a_worker_whose_read_timeout_is_shorter_than_its_blocking_read_reads_correctly(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    provider: ProviderThread,
    workers: WorkerPool,
) -> None:
    """Lease 30 s: the worker's XREADGROUP blocks 1 s, longer than the 0.5 s timeout. Its
    client allows for the block, so idle reads end normally instead of timing out."""
    settings = settings.replace(lease_ttl=30.0, redis_timeout=TIMEOUT)
    worker = workers.start(provider.url, settings=settings)
    first = send_all(settings, conversation_requests(8, 2))
    wait_until(lambda: delivered_ids(provider) >= all_ids(first), timeout=30, message="first")
    time.sleep(3)  # idle: every partition's reader blocks for its full second, repeatedly
    later = send_all(settings, conversation_requests(8, 2, prefix="later"))
    wait_until(
        lambda: (
            delivered_ids(provider) >= all_ids(later) and pending_total(redis_client, keys) == 0
        ),
        timeout=30,
        message="messages sent after an idle spell delivered and acknowledged",
    )
    log = worker.log_tail(1_000_000)
    assert "partition_read_failed" not in log, log[-4000:]
    assert worker.alive()


# -- with the oldest redis-py pyproject allows --------------------------------------------

FLOOR_CHECK = """
import asyncio, json, time
import redis
from relayq.producers import Producer, SyncProducer

FIELDS = {"tenant": "t1", "conversation": "c1", "recipient": "r1", "payload": {}}

def outcome(started, exc):
    return {"error": type(exc).__name__, "message": str(exc),
            "maybe_done": getattr(exc, "maybe_done", None),
            "seconds": time.monotonic() - started}

def sync_send():
    started = time.monotonic()
    try:
        with SyncProducer() as producer:
            producer.send(**FIELDS)
    except Exception as exc:
        return outcome(started, exc)
    return {"error": None}

async def async_send():
    started = time.monotonic()
    try:
        async with Producer() as producer:
            await producer.send(**FIELDS)
    except Exception as exc:
        return outcome(started, exc)
    return {"error": None}

print(json.dumps({"redis": redis.__version__, "sync": sync_send(),
                  "async": asyncio.run(async_send())}))
"""
"""Run by the floor venv's python with the checkout on PYTHONPATH; settings from the env."""

FLOOR_CHECK_TIMEOUT = 60.0
"""A check still running after this long hung (it needs about 3 s)."""


def floor_requirements() -> list[str]:
    """relayq's dependencies, with redis-py pinned to its floor (``>=5.0`` -> ``==5.0.*``)."""
    dependencies: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    pinned = []
    for dependency in dependencies:
        floor = re.fullmatch(r"(redis(?:\[[\w,]+\])?)>=([\d.]+)", dependency.replace(" ", ""))
        pinned.append(f"{floor.group(1)}=={floor.group(2)}.*" if floor else dependency)
    assert any(p.startswith("redis") and "==" in p for p in pinned), dependencies
    return pinned


def redis_floor(requirements: list[str]) -> str:
    return next(r.split("==")[1].rstrip("*").rstrip(".") for r in requirements if "==" in r)


@pytest.fixture(scope="session")
def floor_python() -> Path:
    """The python of a venv with the oldest redis-py relayq allows (and hiredis)."""
    return cached_venv("redis-floor", floor_requirements())


def run_floor_check(python: Path, url: str, tmp_path: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYQ_", "REDIS_URL"))}
    env.update(
        REDIS_URL=url,
        RELAYQ_DATA_DIR=str(tmp_path / "data"),
        RELAYQ_REDIS_TIMEOUT_SECONDS=str(TIMEOUT),
        RELAYQ_REDIS_CONNECT_TIMEOUT_SECONDS=str(TIMEOUT),
        PYTHONPATH=str(ROOT),
    )
    try:
        result = subprocess.run(
            [str(python), "-c", FLOOR_CHECK],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=FLOOR_CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"send() hung: the check was still running after {FLOOR_CHECK_TIMEOUT}s; "
            f"stderr: {exc.stderr!r}"
        ) from None
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def test_with_the_oldest_redis_py_allowed_send_to_a_peer_that_never_answers_raises_in_time(
    floor_python: Path, unresponsive_url: str, tmp_path: Path
) -> None:
    outcome = run_floor_check(floor_python, unresponsive_url, tmp_path)
    floor = redis_floor(floor_requirements())
    assert outcome["redis"].startswith(f"{floor}."), outcome
    for producer in ("sync", "async"):
        failure = outcome[producer]
        assert failure["error"] == "RedisUnavailableError", failure
        assert failure["seconds"] < DOES_NOT_HANG, failure
        assert f"{unresponsive_url} did not answer in time" in failure["message"], failure
        assert failure["maybe_done"] is True, failure
