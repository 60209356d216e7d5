"""Issue 16 item 3: systemd units that really supervise.

The units pass ``systemd-analyze verify`` once ``relayq systemd install`` has put them in
place; a real worker process speaks sd_notify to a real datagram socket standing in for
systemd's (READY=1, STATUS= with its counts, WATCHDOG=1 from its event loop, STOPPING=1),
and a worker whose loop is wedged stops pinging the watchdog, so systemd would restart it.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from relayq.consumers.watchdog_ping import watchdog_timeout
from relayq.ops.cli import main
from relayq.ops.local_provider import ProviderThread
from relayq.producers import SyncProducer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.support import WorkerPool, conversation_requests, send_all, wait_until

REPOSITORY = str(Path(__file__).resolve().parent.parent)
FREEZING = {"RELAYQ_DELIVERER": "tests.freezing_deliverer:build", "PYTHONPATH": REPOSITORY}
WATCHDOG_USEC = 1.0
"""The watchdog timeout the tests set: pings come every 0.5 s (half of it), which leaves
room for a loaded CI machine's scheduling delays."""
WATCHDOG = {"WATCHDOG_USEC": str(round(WATCHDOG_USEC * 1_000_000))}
FREEZE = 2.5
UNUSED_URL = "http://127.0.0.1:9/unused"
UNIT_FOLDER = "etc/systemd/system"
UNITS = ("relayq-worker@.service", "relayq-api.service")
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


# -- a stand-in for systemd's notify socket ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Notice:
    """One datagram: when it arrived, the sender's pid (SCM_CREDENTIALS), its text."""

    at: float
    pid: int
    text: str

    def has(self, assignment: str) -> bool:
        return assignment in self.text.splitlines()

    def value(self, key: str) -> str | None:
        for line in self.text.splitlines():
            if line.startswith(f"{key}="):
                return line[len(key) + 1 :]
        return None


class NotifyListener:
    """A bound AF_UNIX datagram socket, read by a thread, as systemd reads $NOTIFY_SOCKET:
    with SO_PASSCRED, so each datagram names its sender (what NotifyAccess=main checks)."""

    def __init__(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="rq-sd-")  # short: sun_path holds 108 bytes
        self.path = os.path.join(self._folder, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.settimeout(0.05)
        self._notices: list[Notice] = []
        self._lock = threading.Lock()
        self._open = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._open:
            try:
                data, ancillary, _flags, _address = self._sock.recvmsg(
                    4096, socket.CMSG_SPACE(_CREDENTIALS.size)
                )
            except TimeoutError:
                continue
            pid = -1
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _CREDENTIALS.unpack(payload[: _CREDENTIALS.size])[0]
            with self._lock:
                self._notices.append(Notice(time.monotonic(), pid, data.decode()))

    def notices(self) -> list[Notice]:
        with self._lock:
            return list(self._notices)

    def with_assignment(self, assignment: str) -> list[Notice]:
        return [notice for notice in self.notices() if notice.has(assignment)]

    def statuses(self) -> list[str]:
        return [s for notice in self.notices() if (s := notice.value("STATUS")) is not None]

    def close(self) -> None:
        self._open = False
        self._thread.join(timeout=5)
        self._sock.close()
        shutil.rmtree(self._folder, ignore_errors=True)


@pytest.fixture
def notify_socket() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    try:
        yield listener
    finally:
        listener.close()


def ping_gaps(notices: list[Notice]) -> list[tuple[float, float]]:
    """(arrival, seconds since the previous ping) of every WATCHDOG=1 after the first."""
    times = [notice.at for notice in notices if notice.has("WATCHDOG=1")]
    return [(later, later - earlier) for earlier, later in itertools.pairwise(times)]


# -- sd_notify from a real worker ---------------------------------------------------------


def test_a_worker_sends_ready_status_watchdog_and_stopping(
    settings: Settings,
    provider: ProviderThread,
    workers: WorkerPool,
    notify_socket: NotifyListener,
) -> None:
    environment = {"NOTIFY_SOCKET": notify_socket.path, **WATCHDOG}
    worker = workers.start(provider.url, burst=False, settings=settings, **environment)
    wait_until(lambda: notify_socket.with_assignment("READY=1"), timeout=20, message="READY=1")
    send_all(settings, conversation_requests(10, 3))  # 30 messages
    done = "30 delivered, 0 in flight, 8 of 8 partitions, 0 retried, 0 dead-lettered"
    wait_until(lambda: done in notify_socket.statuses(), timeout=20, message=done)
    wait_until(
        lambda: len(notify_socket.with_assignment("WATCHDOG=1")) >= 5,
        timeout=10,
        message="five watchdog pings",
    )

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, workers.logs()
    notices = notify_socket.notices()
    assert {notice.pid for notice in notices} == {worker.pid}, "all from the main process"
    ready = notify_socket.with_assignment("READY=1")
    stopping = notify_socket.with_assignment("STOPPING=1")
    assert len(ready) == 1 and len(stopping) == 1
    pings = notify_socket.with_assignment("WATCHDOG=1")
    assert ready[0].at <= pings[0].at, "READY=1 before the first ping"
    assert max(gap for _, gap in ping_gaps(notices)) < WATCHDOG_USEC, "never a timeout"
    assert notify_socket.statuses()[-1].startswith("stopping: 30 delivered")


def test_a_wedged_event_loop_stops_the_watchdog_pings(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    workers: WorkerPool,
    notify_socket: NotifyListener,
) -> None:
    settings = settings.replace(lease_ttl=9.0, send_timeout=3.0)
    environment = {"NOTIFY_SOCKET": notify_socket.path, **WATCHDOG, **FREEZING}
    worker = workers.start(UNUSED_URL, burst=False, settings=settings, **environment)
    wait_until(
        lambda: len(notify_socket.with_assignment("WATCHDOG=1")) >= 3,
        timeout=20,
        message="pings before the freeze",
    )
    with SyncProducer(settings) as producer:
        frozen_at = time.monotonic()
        producer.send(
            tenant="acme", conversation="c-1", recipient="+15550100", payload={"freeze": FREEZE}
        )
    wait_until(lambda: redis_client.llen(keys.sink) == 1, timeout=20, message="delivered")
    resumed = time.monotonic()
    wait_until(
        lambda: sum(n.at > resumed for n in notify_socket.with_assignment("WATCHDOG=1")) >= 3,
        timeout=10,
        message="pings after the freeze",
    )

    gaps = ping_gaps(notify_socket.notices())
    before = [gap for at, gap in gaps if at < frozen_at]
    silence = max(gap for at, gap in gaps if at > frozen_at)
    assert max(before) < WATCHDOG_USEC, before
    assert silence >= FREEZE - 0.2, gaps  # far past WATCHDOG_USEC: systemd restarts it
    assert worker.alive(), "the loop runs again: the pings resumed"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, workers.logs()


def test_the_watchdog_is_read_as_sd_watchdog_enabled_does() -> None:
    assert watchdog_timeout({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_timeout({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "42"}, pid=42) == 0.2
    assert watchdog_timeout({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "41"}, pid=42) == 0.0
    for unset in ({}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "soon"}):
        assert watchdog_timeout(unset) == 0.0


# -- the units and `relayq systemd install` -----------------------------------------------


def relayq_executable() -> str:
    """The venv's ``relayq`` script (what ``pip install`` puts on PATH)."""
    path = Path(sys.executable).parent / "relayq"
    if not path.exists():
        pytest.skip(f"no relayq script beside {sys.executable}: relayq is not pip-installed")
    return str(path)


def install(*args: str) -> subprocess.CompletedProcess[str]:
    """``relayq systemd install <args>``, run as the installed ``relayq`` script."""
    return subprocess.run(
        [relayq_executable(), "systemd", "install", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_installed_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze missing: apt-get install systemd (.ci/run does)")
    done = install("--prefix", str(tmp_path))
    assert done.returncode == 0, done.stderr
    units = [tmp_path / UNIT_FOLDER / name for name in UNITS]
    for unit in units:
        assert f"ExecStart={relayq_executable()} " in unit.read_text(), "the real relayq"

    verified = subprocess.run(
        [analyze, "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings: any output at all is a failure.
    assert (verified.returncode, verified.stdout, verified.stderr) == (0, "", "")


def test_the_sysusers_entry_creates_the_dedicated_user(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers missing: apt-get install systemd (.ci/run does)")
    assert install("--prefix", str(tmp_path), "--user", "relayq-mail").returncode == 0
    done = subprocess.run(
        [sysusers, "--dry-run", f"--root={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Creating user 'relayq-mail'" in done.stdout + done.stderr
    for name in UNITS:
        text = (tmp_path / UNIT_FOLDER / name).read_text()
        assert "\nUser=relayq-mail\nGroup=relayq-mail\n" in text


def test_the_worker_unit_supervises_as_the_issue_asks(tmp_path: Path) -> None:
    assert install("--prefix", str(tmp_path)).returncode == 0
    lines = set((tmp_path / UNIT_FOLDER / UNITS[0]).read_text().splitlines())
    expected = {
        "Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=on-failure",
        "KillSignal=SIGTERM", "TimeoutStopSec=30", "MemoryMax=512M", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "User=relayq",
        "EnvironmentFile=/etc/relayq/relayq.env",
        "EnvironmentFile=-/etc/relayq/worker-%i.env",
    }  # fmt: skip
    assert expected <= lines, expected - lines
    stop_timeout = float(next(line for line in lines if line.startswith("TimeoutStopSec="))[15:])
    assert stop_timeout >= Settings().shutdown_grace + 15, "the drain, then flush and release"


def test_install_never_overwrites_the_environment_file(tmp_path: Path) -> None:
    env_file = tmp_path / "etc/relayq/relayq.env"
    first = install("--prefix", str(tmp_path))
    assert first.returncode == 0 and f"wrote {env_file}" in first.stdout
    assert env_file.stat().st_mode & 0o777 == 0o600, "it may hold provider tokens"
    assert "REDIS_URL=" in env_file.read_text()
    env_file.write_text("REDIS_URL=redis://10.0.0.5:6379/0\n")

    again = install("--prefix", str(tmp_path))
    assert again.returncode == 0 and f"kept {env_file}" in again.stdout
    assert env_file.read_text() == "REDIS_URL=redis://10.0.0.5:6379/0\n"
    assert "systemctl enable --now relayq-worker@1" in again.stdout


def test_dry_run_writes_nothing_and_shows_the_units(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = relayq_executable()
    command = ["systemd", "install", "--prefix", str(tmp_path), "--bin", binary, "--dry-run"]
    assert main(command) == 0
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert f"ExecStart={binary} worker" in out and "systemctl daemon-reload" in out


def test_install_as_a_user_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["systemd", "install"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs root" in err and "--dry-run" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--bin", "/nonexistent/relayq"], "--bin '/nonexistent/relayq' is not an executable"),
        (["--user", "Robert'); DROP"], "is not a user name"),
    ],
)
def test_bad_install_arguments_are_usage_errors(
    tmp_path: Path, args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["systemd", "install", "--prefix", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relayq: error: ") and fragment in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
