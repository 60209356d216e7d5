"""``relayq demo``: the whole system on one machine, verified end to end.

It starts a redis-server of its own (AOF on, data in ``--data-dir``), a local HTTP
provider that fails a share of requests, and worker processes; it sends messages over
many conversations, tenants and priorities, shows progress, and checks what the provider
received: nothing lost, every conversation in order, duplicates counted. It stops every
process it started, also on Ctrl-C or error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import msgspec
import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from relayq.ops.dead_letter_inspection import read_dead_letters
from relayq.ops.delivery_check import DeliveryCheck, check_deliveries
from relayq.ops.local_provider import Delivery
from relayq.producers.async_producer import Producer
from relayq.producers.send_request import SendRequest
from relayq.streams.keys import Keys
from relayq.streams.redis_server import RedisServer, free_port
from relayq.streams.settings import Settings

__all__ = ("DemoOptions", "run_demo")

_PRIORITIES = ("high", "normal", "normal", "normal", "low")
_REJECT_EVERY = 1000  # one message in this many goes to a recipient the provider rejects (400)


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    messages: int = 20_000
    conversations: int = 2_000
    tenants: int = 50
    workers: int = 2
    fail_rate: float = 0.05
    throttle_rate: float = 0.01
    data_dir: str = ".relayq/demo"
    timeout: float = 300.0
    max_attempts: int = 10
    backoff_base: float = 0.2
    tenant_cap: int = 5
    global_rate: float = 0.0

    def validate(self) -> None:
        for name in ("messages", "conversations", "tenants", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1")
        if self.tenant_cap < 0 or self.global_rate < 0:
            raise ValueError("--tenant-cap and --global-rate must be >= 0 (0 = off)")
        if self.tenants > self.conversations:
            raise ValueError("--tenants must not exceed --conversations")
        if not 0 <= self.fail_rate + self.throttle_rate < 1:
            raise ValueError("--fail-rate plus --throttle-rate must be in [0, 1)")


class _Processes:
    """Every child process the demo starts, stopped in reverse order."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []
        self.redis: RedisServer | None = None

    def spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self.redis is not None:
            self.redis.stop()


def _wait_for_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local provider did not come up at {url}") from None
            time.sleep(0.05)


def _plan(options: DemoOptions) -> list[SendRequest]:
    """Messages spread round-robin over conversations; each conversation has one tenant and
    one priority (FIFO is promised within a priority)."""
    requests = []
    for i in range(options.messages):
        c = i % options.conversations
        tenant = f"tenant-{c % options.tenants:03d}"
        recipient = f"reject-{c}" if i % _REJECT_EVERY == _REJECT_EVERY - 1 else f"+1555{c:07d}"
        requests.append(
            SendRequest(
                tenant=tenant,
                conversation=f"conv-{c:05d}",
                recipient=recipient,
                payload={
                    "text": f"message {i // options.conversations} of conversation {c}",
                    "n": i,
                },
                priority=_PRIORITIES[c % len(_PRIORITIES)],
            )
        )
    return requests


async def _produce(
    settings: Settings, requests: list[SendRequest]
) -> dict[tuple[str, str], list[str]]:
    sent: dict[tuple[str, str], list[str]] = defaultdict(list)
    async with Producer(settings) as producer:
        for start in range(0, len(requests), 1000):
            batch = requests[start : start + 1000]
            for request, result in zip(batch, await producer.send_many(batch), strict=True):
                if result.message_id is None:
                    raise RuntimeError(f"send failed: {result.error}")
                sent[(request.tenant, request.conversation)].append(result.message_id)
    return sent


def _worker_env(options: DemoOptions, redis_url: str, provider_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": redis_url,
            "RELAYQ_DELIVERER": "webhook",
            "RELAYQ_WEBHOOK_URL": provider_url,
            "RELAYQ_MAX_ATTEMPTS": str(options.max_attempts),
            "RELAYQ_BACKOFF_BASE_SECONDS": str(options.backoff_base),
            "RELAYQ_LEASE_TTL_SECONDS": "15",
            "RELAYQ_SEND_TIMEOUT_SECONDS": "5",
            "RELAYQ_TENANT_CAP": str(options.tenant_cap),
            "RELAYQ_GLOBAL_RATE": str(options.global_rate),
        }
    )
    return env


def _follow(
    console: Console,
    client: redis.Redis,
    keys: Keys,
    provider: str,
    total: int,
    workers: list[subprocess.Popen[bytes]],
    timeout: float,
) -> None:
    columns = (
        TextColumn("delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("deliver", total=total, detail="")
        while True:
            stats = httpx.get(f"{provider}/stats", timeout=5).json()
            dead = sum(int(client.xlen(keys.dead_letter(p))) for p in range(keys.partitions))
            done = min(total, stats["accepted"] + dead)
            detail = f"retries {stats['failed']}  429s {stats['throttled']}  dead-lettered {dead}"
            progress.update(task, completed=done, detail=detail)
            if all(w.poll() is not None for w in workers):
                return
            if time.monotonic() > deadline:
                console.print(f"[red]timed out after {timeout:.0f}s[/red]")
                return
            time.sleep(0.5)


def _report(
    console: Console,
    options: DemoOptions,
    check: DeliveryCheck,
    seconds: float,
    max_tenant_in_flight: int,
) -> None:
    table = Table(title="relayq demo: verification", show_header=False)
    rows = [
        ("produced", f"{check.sent:,}"),
        ("delivered", f"{check.delivered:,}"),
        ("dead-lettered (400 recipients, by design)", f"{check.dead_lettered:,}"),
        ("lost", f"{check.lost:,}  {'OK' if check.lost == 0 else 'FAIL'}"),
        (
            "order violations",
            f"{check.order_violations:,} in {check.conversations_out_of_order} "
            f"conversations  {'OK' if check.order_violations == 0 else 'FAIL'}",
        ),
        ("duplicates", f"{check.duplicates:,}"),
        ("throughput", f"{check.delivered / seconds:,.0f} msg/s over {seconds:.1f} s"),
        (
            "latency send->provider p50 / p99",
            f"{check.latency_p50_ms:,.0f} ms / {check.latency_p99_ms:,.0f} ms",
        ),
        (
            "setup",
            f"{options.workers} workers, {options.conversations:,} conversations, "
            f"{options.tenants} tenants, 3 priorities, provider fails "
            f"{options.fail_rate:.0%} (503) + {options.throttle_rate:.0%} (429)",
        ),
        (
            "limits",
            f"<= {options.tenant_cap or 'any'} in flight per tenant, global "
            + (f"{options.global_rate:g} msg/s" if options.global_rate else "rate off")
            + f"; most in flight for one tenant at the provider: {max_tenant_in_flight}",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def run_demo(options: DemoOptions) -> int:
    """Run the demo; 0 when nothing was lost and every conversation stayed in order."""
    options.validate()
    console = Console()
    data_dir = Path(options.data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    processes = _Processes()
    try:
        console.print(f"starting redis-server (AOF on) in {data_dir} ...")
        processes.redis = RedisServer(data_dir, appendonly=True).start()
        port = free_port()
        provider = f"http://127.0.0.1:{port}"
        processes.spawn(
            [
                sys.executable,
                "-m",
                "relayq.ops.cli",
                "provider",
                "--port",
                str(port),
                "--fail-rate",
                str(options.fail_rate),
                "--throttle-rate",
                str(options.throttle_rate),
                "--retry-after",
                "0.2",
            ],
            dict(os.environ),
        )
        _wait_for_http(f"{provider}/stats")
        env = _worker_env(options, processes.redis.unix_url, f"{provider}/deliver")
        settings = Settings(redis_url=processes.redis.unix_url)
        keys = Keys.from_settings(settings)
        console.print(f"local provider on {provider}; starting {options.workers} workers ...")
        workers = [
            processes.spawn(
                [
                    sys.executable,
                    "-m",
                    "relayq.ops.cli",
                    "--log-level",
                    "error",
                    "worker",
                    "--burst",
                ],
                env,
            )
            for _ in range(options.workers)
        ]
        requests = _plan(options)
        started = time.monotonic()
        sent = asyncio.run(_produce(settings, requests))
        console.print(f"sent {options.messages:,} messages in {time.monotonic() - started:.1f} s")
        client = redis.Redis.from_url(processes.redis.unix_url)
        _follow(console, client, keys, provider, options.messages, workers, options.timeout)
        seconds = time.monotonic() - started
        deliveries = msgspec.json.decode(
            httpx.get(f"{provider}/received", timeout=30).content, type=list[Delivery]
        )
        stats = httpx.get(f"{provider}/stats", timeout=30).json()
        max_tenant = max(stats["max_tenant_in_flight"].values(), default=0)
        dead = [d.message.id for d in read_dead_letters(client, keys) if d.message is not None]
        client.close()
        check = check_deliveries(sent, deliveries, dead)
        _report(console, options, check, seconds, max_tenant)
        capped = options.tenant_cap == 0 or max_tenant <= options.tenant_cap
        return 0 if check.ok and capped else 1
    finally:
        processes.stop()
