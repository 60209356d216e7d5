"""Helpers shared by the tests: bounded waits, worker processes, and checks on what the
provider received and what Redis holds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import redis

from relayq.consumers.admission import Admission
from relayq.consumers.envelope import Envelope, PartitionState
from relayq.ops.local_provider import Delivery, ProviderThread
from relayq.producers import SendRequest, SyncProducer
from relayq.streams.codec import decode_entry
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message, Priority
from relayq.streams.redis_client import create_client
from relayq.streams.scripts import Scripts
from relayq.streams.settings import ENVIRONMENT, Settings

ConversationKey = tuple[str, str]
SentLog = dict[ConversationKey, list[str]]
"""(tenant, conversation) -> message ids in the order send() accepted them."""

WORKER_LOG_LEVEL = os.environ.get("TEST_WORKER_LOG_LEVEL", "warning")
"""Log level of worker processes (``TEST_WORKER_LOG_LEVEL=info`` shows every retry)."""


# -- waiting ------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], object], *, timeout: float, message: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it is truthy; fail with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], Awaitable[object]],
    *,
    timeout: float,
    message: str,
    interval: float = 0.05,
) -> None:
    """``wait_until`` for coroutines: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        await asyncio.sleep(interval)


# -- worker processes ---------------------------------------------------------------------


def worker_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """The process environment that gives a ``relayq worker`` exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYQ_", "REDIS_URL"))}
    for variable, (field, _parse, _doc) in ENVIRONMENT.items():
        value = getattr(settings, field)
        if value is not None:
            env[variable] = str(value)
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``relayq`` CLI against the test's Redis and namespace."""
    return subprocess.run(
        [sys.executable, "-m", "relayq.ops.cli", *args],
        env=worker_environment(settings),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclasses.dataclass
class WorkerProcess:
    """One ``python -m ops.cli worker`` child process."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def send_signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code; fails the test if the process does not exit within ``timeout``."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.pid} did not exit within {timeout}s; log:\n{self.log_tail()}"
            ) from None

    def worker_id(self, client: redis.Redis, keys: Keys) -> str | None:
        """Its id in the live-worker set (ids embed the pid), once it has registered."""
        marker = f"-{self.pid}-"
        members: Any = client.zrange(keys.workers, 0, -1)
        for member in members:
            text = member.decode()
            if marker in text:
                return str(text)
        return None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


class WorkerPool:
    """Starts worker processes and guarantees every one is gone at teardown."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.settings = settings
        self.directory = directory
        self.processes: list[WorkerProcess] = []

    def start(
        self,
        webhook_url: str,
        *,
        burst: bool = False,
        settings: Settings | None = None,
        **env: str,
    ) -> WorkerProcess:
        chosen = settings if settings is not None else self.settings
        environment = worker_environment(
            chosen.replace(deliverer="webhook", webhook_url=webhook_url), **env
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        log_path = self.directory / f"worker-{len(self.processes)}.log"
        command = [
            sys.executable,
            "-m",
            "relayq.ops.cli",
            "--log-level",
            WORKER_LOG_LEVEL,
            "worker",
        ]
        if burst:
            command.append("--burst")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, env=environment, cwd=self.directory, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        worker = WorkerProcess(process, log_path)
        self.processes.append(worker)
        return worker

    def kill_all(self) -> None:
        for worker in self.processes:
            if worker.alive():
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGCONT)  # in case a test froze it
                    worker.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- worker pid {w.pid} (exit {w.process.returncode}):\n{w.log_tail()}"
            for w in self.processes
        )


# -- sending ------------------------------------------------------------------------------


def conversation_requests(
    conversations: int,
    per_conversation: int,
    *,
    tenants: int = 5,
    prefix: str = "c",
    recipient: Callable[[int, int], str] = lambda c, i: f"+1555{c:04d}",
) -> list[SendRequest]:
    """Messages for many conversations, interleaved (message i of every conversation, then
    message i + 1), so each partition's stream mixes conversations as real traffic does."""
    return [
        SendRequest(
            tenant=f"tenant-{c % tenants}",
            conversation=f"{prefix}-{c}",
            recipient=recipient(c, i),
            payload={"conversation": c, "seq": i},
        )
        for i in range(per_conversation)
        for c in range(conversations)
    ]


def send_all(settings: Settings, requests: Sequence[SendRequest]) -> SentLog:
    """Enqueue ``requests`` (they must all be valid); the per-conversation send order."""
    sent: SentLog = defaultdict(list)
    with SyncProducer(settings) as producer:
        results = producer.send_many(requests)
    for request, result in zip(requests, results, strict=True):
        assert result.ok and result.message_id is not None, result.error
        sent[(request.tenant, request.conversation)].append(result.message_id)
    return sent


def merge_sent(*logs: SentLog) -> SentLog:
    merged: SentLog = defaultdict(list)
    for log in logs:
        for key, ids in log.items():
            merged[key].extend(ids)
    return merged


# -- checking deliveries ------------------------------------------------------------------


@dataclasses.dataclass
class OrderCheck:
    """What a provider received compared with what was sent."""

    first_seen: dict[str, int]
    """message id -> position of its first delivery in arrival order."""
    repeats: Counter[str]
    """message id -> deliveries beyond its first (at-least-once duplicates)."""
    violations: list[str]
    """First deliveries that came after a later-sent message of the same conversation."""
    unexpected: list[str]
    """Delivered ids that were never sent."""

    @property
    def delivered(self) -> set[str]:
        return set(self.first_seen)

    @property
    def duplicates(self) -> int:
        """Deliveries beyond the first of a message."""
        return sum(self.repeats.values())


def check_order(
    sent: Mapping[ConversationKey, Sequence[str]], deliveries: Iterable[Delivery]
) -> OrderCheck:
    """Judge order on first deliveries: within a conversation, the first delivery of each
    message must come in send order. Repeats (at-least-once) are counted, not judged."""
    where = {mid: (key, i) for key, ids in sent.items() for i, mid in enumerate(ids)}
    first_seen: dict[str, int] = {}
    last: dict[ConversationKey, int] = {}
    repeats: Counter[str] = Counter()
    violations: list[str] = []
    unexpected: list[str] = []
    for position, delivery in enumerate(deliveries):
        found = where.get(delivery.message_id)
        if found is None:
            unexpected.append(delivery.message_id)
            continue
        if delivery.message_id in first_seen:
            repeats[delivery.message_id] += 1
            continue
        first_seen[delivery.message_id] = position
        key, index = found
        if key != (delivery.tenant, delivery.conversation):
            violations.append(f"{delivery.message_id} arrived as {delivery} but was sent in {key}")
        if index < last.get(key, -1):
            violations.append(f"{key}: message #{index} first delivered after #{last[key]}")
        last[key] = max(index, last.get(key, -1))
    return OrderCheck(first_seen, repeats, violations, unexpected)


def all_ids(sent: Mapping[ConversationKey, Sequence[str]]) -> set[str]:
    return {mid for ids in sent.values() for mid in ids}


def merged_deliveries(*providers: ProviderThread) -> list[Delivery]:
    """Deliveries of several providers in one arrival order (same host clock)."""
    merged = [d for provider in providers for d in provider.deliveries()]
    merged.sort(key=lambda d: d.received_ns)
    return merged


def delivered_ids(*providers: ProviderThread) -> set[str]:
    return {d.message_id for provider in providers for d in provider.deliveries()}


# -- what Redis holds ---------------------------------------------------------------------


def dead_letters(client: redis.Redis, keys: Keys) -> list[dict[str, bytes]]:
    """Every dead-letter entry of every partition, fields by name, plus ``dlq_id``."""
    found: list[dict[str, bytes]] = []
    for partition in range(keys.partitions):
        entries: Any = client.xrange(keys.dead_letter(partition))
        for dlq_id, fields in entries:
            entry = {name.decode(): value for name, value in fields.items()}
            entry["dlq_id"] = dlq_id
            found.append(entry)
    return found


def pending_total(client: redis.Redis, keys: Keys, consumer: str | None = None) -> int:
    """Entries read but not acknowledged (by ``consumer``, or by anyone)."""
    total = 0
    for partition in range(keys.partitions):
        for stream in keys.streams(partition):
            if not client.exists(stream):
                continue
            try:
                if consumer is None:
                    summary: Any = client.xpending(stream, GROUP)
                    total += int(summary["pending"])
                else:
                    rows: Any = client.xpending_range(
                        stream, GROUP, min="-", max="+", count=100_000, consumername=consumer
                    )
                    total += len(rows)
            except redis.ResponseError as exc:  # no group yet: nothing read
                if "NOGROUP" not in str(exc):
                    raise
    return total


def pending_message_ids(client: redis.Redis, keys: Keys, consumer: str) -> set[str]:
    """Message ids of the entries ``consumer`` has read and not acknowledged."""
    found: set[str] = set()
    for partition in range(keys.partitions):
        for stream in keys.streams(partition):
            try:
                rows: Any = client.xpending_range(
                    stream, GROUP, min="-", max="+", count=100_000, consumername=consumer
                )
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                continue
            for row in rows:
                entry_id = row["message_id"]
                entries: Any = client.xrange(stream, entry_id, entry_id)
                for _, fields in entries:
                    found.add(decode_entry(fields).id)
    return found


def stream_length(client: redis.Redis, keys: Keys) -> int:
    """Entries in every priority stream of every partition."""
    return sum(
        int(client.xlen(stream)) for p in range(keys.partitions) for stream in keys.streams(p)
    )


def lease_tokens(client: redis.Redis, keys: Keys) -> dict[int, bytes | None]:
    values: Any = client.mget([keys.lease(p) for p in range(keys.partitions)])
    return dict(enumerate(values))


def live_workers(client: redis.Redis, keys: Keys) -> list[str]:
    members: Any = client.zrange(keys.workers, 0, -1)
    return sorted(m.decode() for m in members)


def admission_envelope(tenant: str = "t1", sender: str | None = None) -> Envelope:
    """An entry of a partition held for another minute, for tests that drive Admission."""
    state = PartitionState(partition=0, token="x", lease_deadline=time.monotonic() + 60)
    message = Message(
        id="01J0000000000000000000000",
        tenant=tenant,
        conversation="c",
        recipient="r",
        priority=Priority.NORMAL,
        payload=b"{}",
        created_ms=0,
        sender=sender,
    )
    return Envelope(state=state, stream="s", entry_id=b"1-0", message=message)


_Result = TypeVar("_Result")


def run_admission(
    settings: Settings, keys: Keys, scenario: Callable[[Admission], Awaitable[_Result]]
) -> _Result:
    """Run ``scenario`` against worker "w1"'s Admission on the test Redis, with its round
    loop running; returns what the scenario returns."""

    async def main() -> _Result:
        client = create_client(settings)
        admission = Admission(client, Scripts(client), keys, settings, "w1")
        task = asyncio.create_task(admission.run())
        try:
            return await scenario(admission)
        finally:
            task.cancel()
            await client.aclose()

    return asyncio.run(main())
