"""``relayq demo``: the whole system on one machine, verified end to end.

It starts a redis-server of its own (AOF on, data in ``--data-dir``), a local HTTP
provider that fails a share of requests, and worker processes; it sends messages over
many conversations, tenants and priorities, shows progress, and checks what the provider
received: nothing lost, every conversation in order, duplicates counted. It stops every
process it started, also on Ctrl-C or error.

``--channel`` picks what the workers deliver to: ``webhook`` (the default) POSTs to the
local provider's ``/deliver``; ``whatsapp``, ``sms``, ``email`` and ``mixed`` send through
the adapters to the local provider's fakes of those APIs (``ops.demo_channels``), which
answer ``--fail-rate`` and ``--throttle-rate`` of the sends with their provider's errors;
the demo turns the Twilio fake's status callbacks off (they would cost the provider more
CPU than the sends).
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
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import msgspec
import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from relayq.ops.dead_letter_inspection import read_dead_letters
from relayq.ops.delivery_check import check_deliveries
from relayq.ops.demo_channels import (
    CHANNELS,
    Verdict,
    channel_of,
    channel_rows,
    channels_passed,
    check_fakes,
    fake_progress,
    fake_worker_env,
    fakes_setup_text,
    milliseconds,
    payload_for,
    recipient_for,
    reject_recipients,
)
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
    channel: str = "webhook"
    """``webhook``, ``whatsapp``, ``sms``, ``email`` or ``mixed`` (the three spread over
    the conversations)."""

    @property
    def fakes(self) -> bool:
        """Whether the workers deliver to the provider's fakes (not to its webhook)."""
        return self.channel != "webhook"

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
        if self.channel not in CHANNELS:
            raise ValueError(f"--channel must be one of {', '.join(CHANNELS)}")


class _Processes:
    """Every child process the demo starts, stopped in reverse order."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []
        self.redis: RedisServer | None = None

    def spawn(
        self, args: list[str], env: dict[str, str], *, quiet: bool = False
    ) -> subprocess.Popen[bytes]:
        """``quiet``: its standard output is dropped (errors still show)."""
        stdout = subprocess.DEVNULL if quiet else None
        child = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=stdout)
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


# -- what is sent ----------------------------------------------------------------------


def _plan(options: DemoOptions) -> list[SendRequest]:
    """Messages spread round-robin over conversations; each conversation has one tenant, one
    priority (FIFO is promised within a priority) and one channel."""
    requests = []
    for i in range(options.messages):
        c = i % options.conversations
        channel = channel_of(options.channel, c)
        text = f"message {i // options.conversations} of conversation {c}"
        requests.append(
            SendRequest(
                tenant=f"tenant-{c % options.tenants:03d}",
                conversation=f"conv-{c:05d}",
                recipient=recipient_for(channel, c, i % _REJECT_EVERY == _REJECT_EVERY - 1),
                payload=payload_for(channel, text, i),
                priority=_PRIORITIES[c % len(_PRIORITIES)],
                channel=channel,
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


def _worker_env(options: DemoOptions, redis_url: str, provider: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": redis_url,
            "RELAYQ_DELIVERER": "webhook",
            "RELAYQ_WEBHOOK_URL": f"{provider}/deliver",
            "RELAYQ_MAX_ATTEMPTS": str(options.max_attempts),
            "RELAYQ_BACKOFF_BASE_SECONDS": str(options.backoff_base),
            "RELAYQ_LEASE_TTL_SECONDS": "15",
            "RELAYQ_SEND_TIMEOUT_SECONDS": "5",
            "RELAYQ_TENANT_CAP": str(options.tenant_cap),
            "RELAYQ_GLOBAL_RATE": str(options.global_rate),
        }
    )
    if options.fakes:
        env.update(fake_worker_env(provider))
    return env


# -- progress --------------------------------------------------------------------------

ProgressReader = Callable[[], tuple[int, str]]
"""(requests the provider accepted so far, what went wrong on the way)."""


def _webhook_progress(provider: str) -> ProgressReader:
    def read() -> tuple[int, str]:
        stats = httpx.get(f"{provider}/stats", timeout=5).json()
        return stats["accepted"], f"retries {stats['failed']}  429s {stats['throttled']}"

    return read


def _follow(
    console: Console,
    client: redis.Redis,
    keys: Keys,
    progress_of: ProgressReader,
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
            accepted, trouble = progress_of()
            dead = sum(int(client.xlen(keys.dead_letter(p))) for p in range(keys.partitions))
            done = min(total, accepted + dead)
            progress.update(task, completed=done, detail=f"{trouble}  dead-lettered {dead}")
            if all(w.poll() is not None for w in workers):
                return
            if time.monotonic() > deadline:
                console.print(f"[red]timed out after {timeout:.0f}s[/red]")
                return
            time.sleep(0.5)


# -- the check -------------------------------------------------------------------------


def _check_webhook(
    provider: str, sent: Mapping[tuple[str, str], list[str]], dead: list[str]
) -> tuple[Verdict, int]:
    """The check, and the most requests one tenant had in flight at the provider."""
    deliveries = msgspec.json.decode(
        httpx.get(f"{provider}/received", timeout=30).content, type=list[Delivery]
    )
    stats = httpx.get(f"{provider}/stats", timeout=30).json()
    max_tenant = max(stats["max_tenant_in_flight"].values(), default=0)
    return Verdict(check_deliveries(sent, deliveries, dead)), max_tenant


# -- the summary -----------------------------------------------------------------------


def _setup_text(options: DemoOptions) -> str:
    shape = (
        f"{options.workers} workers, {options.conversations:,} conversations, "
        f"{options.tenants} tenants, 3 priorities, "
    )
    if not options.fakes:
        return shape + (
            f"provider fails {options.fail_rate:.0%} (503) + {options.throttle_rate:.0%} (429)"
        )
    return shape + fakes_setup_text(options.channel, options.fail_rate, options.throttle_rate)


def _limits_text(options: DemoOptions, max_tenant_in_flight: int | None) -> str:
    seen = (
        "n/a (provider requests carry no tenant)"
        if max_tenant_in_flight is None
        else str(max_tenant_in_flight)
    )
    return (
        f"<= {options.tenant_cap or 'any'} in flight per tenant, global "
        + (f"{options.global_rate:g} msg/s" if options.global_rate else "rate off")
        + f"; most in flight for one tenant at the provider: {seen}"
    )


def _report(
    console: Console,
    options: DemoOptions,
    verdict: Verdict,
    seconds: float,
    max_tenant_in_flight: int | None,
) -> None:
    check = verdict.check
    rejected = "rejected recipients" if options.fakes else "400 recipients"
    table = Table(title="relayq demo: verification", show_header=False)
    rows = [
        ("produced", f"{check.sent:,}"),
        ("delivered", f"{check.delivered:,}"),
        (f"dead-lettered ({rejected}, by design)", f"{check.dead_lettered:,}"),
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
            f"{milliseconds(check.latency_p50_ms)} / {milliseconds(check.latency_p99_ms)}",
        ),
        ("setup", _setup_text(options)),
        ("limits", _limits_text(options, max_tenant_in_flight)),
        *channel_rows(verdict),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def _passed(options: DemoOptions, verdict: Verdict, max_tenant_in_flight: int | None) -> bool:
    """Nothing lost, every conversation in order, the tenant cap held (webhook) and every
    channel's fake saw its sends (fakes)."""
    if not verdict.check.ok:
        return False
    if max_tenant_in_flight is not None and options.tenant_cap:
        return max_tenant_in_flight <= options.tenant_cap
    return channels_passed(verdict)


# -- the run ---------------------------------------------------------------------------


def _start_provider(processes: _Processes, options: DemoOptions) -> str:
    """``relayq provider`` in a child process; its base URL once it answers."""
    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "relayq.ops.cli", "provider", "--port", str(port)]
    argv += ["--fail-rate", str(options.fail_rate), "--throttle-rate", str(options.throttle_rate)]
    argv += ["--retry-after", "0.2"]
    if options.fakes:
        argv.append("--no-status-callbacks")
    processes.spawn(argv, dict(os.environ), quiet=True)  # it prints what the demo sets
    _wait_for_http(f"{provider}/stats")
    return provider


def _start_workers(
    processes: _Processes, options: DemoOptions, env: dict[str, str]
) -> list[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "relayq.ops.cli", "--log-level", "error", "worker", "--burst"]
    return [processes.spawn(argv, env) for _ in range(options.workers)]


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
        provider = _start_provider(processes, options)
        requests = _plan(options)
        channels_of = {(r.tenant, r.conversation): r.channel for r in requests}
        if options.fakes:
            reject_recipients(provider, {c for c in channels_of.values() if c is not None})
        env = _worker_env(options, processes.redis.unix_url, provider)
        settings = Settings(redis_url=processes.redis.unix_url)
        keys = Keys.from_settings(settings)
        console.print(f"local provider on {provider}; starting {options.workers} workers ...")
        workers = _start_workers(processes, options, env)
        started = time.monotonic()
        sent = asyncio.run(_produce(settings, requests))
        console.print(f"sent {options.messages:,} messages in {time.monotonic() - started:.1f} s")
        client = redis.Redis.from_url(processes.redis.unix_url)
        progress = fake_progress(provider) if options.fakes else _webhook_progress(provider)
        _follow(console, client, keys, progress, options.messages, workers, options.timeout)
        seconds = time.monotonic() - started
        dead = [d.message.id for d in read_dead_letters(client, keys) if d.message is not None]
        client.close()
        max_tenant: int | None = None
        if options.fakes:
            verdict = check_fakes(provider, sent, channels_of, dead)
        else:
            verdict, max_tenant = _check_webhook(provider, sent, dead)
        _report(console, options, verdict, seconds, max_tenant)
        return 0 if _passed(options, verdict, max_tenant) else 1
    finally:
        processes.stop()
