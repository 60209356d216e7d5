"""How many Redis commands a run costs: INFO commandstats (every command, those Lua scripts
run included) and MONITOR (which tells a client's own commands from a script's).

Redis counts a command a script runs (``redis.call``) in its ``cmdstat_*`` like one a client
sent, so commandstats gives the total work; MONITOR shows each command once, a script's as
``[0 lua]``, so counting its lines separates the commands clients sent (round trips carry
one or a pipeline of them) from those scripts ran. The bench's own progress polling and
counters (keys ``bench:peer:*``) and the runner's INFO and ECHO are left out.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import msgspec
import redis

__all__ = ("CommandCounts", "Monitor", "commandstats")

_COUNTER = b"bench:peer:"
"""In the lines of the bench's progress counter (the workers' flushes, the runner's polls)."""
_ADMIN = (b'"info"', b'"INFO"', b'"echo"', b'"ECHO"')
_ADMIN_COMMANDS = ("info", "echo", "monitor")
"""The runner's own commands, left out of commandstats by name."""
_LUA = b" lua] "
_MARK = b"relayq-bench-monitor-end"


def commandstats(url: str) -> dict[str, int]:
    """Calls so far per command (``cmdstat_xadd`` -> ``xadd``)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


class CommandCounts(msgspec.Struct, frozen=True):
    """Commands between two points of a run, the bench's own left out."""

    total: int
    """Every command, those scripts ran included (commandstats)."""
    client_sent: int
    """Commands clients sent (MONITOR lines not from a script)."""
    evalsha: int
    by_command: dict[str, int]
    """Every command's calls (commandstats), the runner's own left out."""


class Monitor:
    """Counts MONITOR lines on ``host:port`` from ``__enter__`` to :meth:`stop`."""

    def __init__(self, url: str, host: str, port: int) -> None:
        self._url = url
        self._address = (host, port)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._before: dict[str, int] = {}
        self.lines = 0
        self.lua = 0
        self.own = 0
        self._marked = threading.Event()

    def __enter__(self) -> Monitor:
        self._before = commandstats(self._url)
        sock = socket.create_connection(self._address, timeout=30)
        sock.sendall(b"MONITOR\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"MONITOR refused: {reply!r}")
        self._sock = sock
        self._thread = threading.Thread(target=self._read, name="bench-monitor", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        sock = self._sock  # kept: _close() sets the attribute to None while this reads
        assert sock is not None
        rest = b""
        while True:
            try:
                data = sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            lines = (rest + data).split(b"\r\n")
            rest = lines.pop()
            self._count(lines)

    def _count(self, lines: list[bytes]) -> None:
        for line in lines:
            if _MARK in line:
                self._marked.set()
            elif _COUNTER in line:
                self.own += 1
            elif any(admin in line for admin in _ADMIN):
                continue
            elif _LUA in line:
                self.lua += 1
            else:
                self.lines += 1

    def stop(self) -> CommandCounts:
        """Wait until every command sent so far was counted, stop, and count."""
        client = redis.Redis.from_url(self._url)
        try:
            client.echo(_MARK)
        finally:
            client.close()
        if not self._marked.wait(timeout=60):
            raise RuntimeError("MONITOR did not show the end marker within 60 s")
        after = commandstats(self._url)
        self._close()
        calls = {c: n - self._before.get(c, 0) for c, n in after.items()}
        calls = {c: n for c, n in calls.items() if n and c not in _ADMIN_COMMANDS}
        return CommandCounts(sum(calls.values()) - self.own, self.lines,
                             calls.get("evalsha", 0), calls)  # fmt: skip

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._close()
