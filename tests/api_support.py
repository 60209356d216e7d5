"""A real ``relayq api`` server process on 127.0.0.1 for a test's namespace, with keys made
by the real ``relayq keys create``, and an HTTP client for it."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from relayq.streams.settings import Settings
from tests.support import run_cli, worker_environment

__all__ = ("ApiServer", "free_port", "redis_contents", "start_api_server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclasses.dataclass
class ApiServer:
    settings: Settings
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    admin_key: str = ""

    def create_key(self, *flags: str) -> str:
        """A new key (``relayq keys create <flags> --json``): ``--admin``, ``--read-only``
        or ``--tenant T``."""
        done = run_cli(self.settings, "keys", "create", *flags, "--json")
        assert done.returncode == 0, done.stderr
        key: str = json.loads(done.stdout)["key"]
        return key

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        """One request with ``key`` (default: the admin key; "" for none)."""
        with self.client(self.admin_key if key is None else key) as client:
            return client.request(method, path, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_api_server(settings: Settings, directory: Path) -> ApiServer:
    """``relayq api`` on a free port, once it answers; with an admin key."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = directory / f"api-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "relayq.ops.cli", "--log-level", "debug", "api",
             "--port", str(port)],
            env=worker_environment(settings), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = ApiServer(settings, f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{server.url}/v1/health", timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"relayq api did not start:\n{server.log()}") from None
            time.sleep(0.1)
    server.admin_key = server.create_key("--admin", "--name", "test-admin")
    return server


def redis_contents(client: redis.Redis) -> bytes:
    """Every key name and value Redis holds (sorted by key), as one blob: to compare before
    and after a request that must write nothing, or to search for what must not be stored."""
    readers: dict[bytes, Any] = {
        b"string": client.get,
        b"hash": lambda key: sorted(client.hgetall(key).items()),
        b"list": lambda key: client.lrange(key, 0, -1),
        b"set": lambda key: sorted(client.smembers(key)),
        b"zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        b"stream": client.xrange,
    }
    parts: list[bytes] = []
    for key in sorted(client.scan_iter(count=1000)):
        kind: bytes = client.type(key)  # type: ignore[assignment]
        parts += [key, repr(readers[kind](key)).encode()]
    return b"\n".join(parts)
