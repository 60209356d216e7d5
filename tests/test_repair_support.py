"""Helpers shared by the repair command tests (tests/test_repair_*.py); holds no tests."""

from __future__ import annotations

import json
import signal
from typing import Any

import redis

from relayq.producers import SyncProducer
from relayq.streams.codec import decode_entry
from relayq.streams.keys import GROUP, Keys
from relayq.streams.settings import Settings
from tests.support import WorkerProcess, lease_tokens, run_cli, wait_until

__all__ = (
    "cli_json",
    "kill_when_leases_expired",
    "repair_log",
    "send",
    "unread_message_ids",
)


def send(
    settings: Settings, tenant: str, count: int, *, conversation: str | None = None, **fields: Any
) -> list[str]:
    """Send ``count`` messages of ``tenant`` (one conversation each, or all in
    ``conversation``); their ids in send order."""
    fields.setdefault("recipient", "+15550100")
    with SyncProducer(settings) as producer:
        return [
            producer.send(
                tenant=tenant,
                conversation=conversation or f"{tenant}-{n}",
                payload={"n": n},
                **fields,
            )
            for n in range(count)
        ]


def cli_json(settings: Settings, *args: str, code: int = 0) -> Any:
    """``relayq <args> --json``: its exit code checked, its stdout parsed."""
    done = run_cli(settings, *args, "--json")
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def repair_log(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    """The repair log's entries, oldest first, fields as text."""
    entries: Any = client.xrange(keys.repairs)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def unread_message_ids(client: redis.Redis, stream: str) -> list[tuple[str, str]]:
    """(tenant, message id) of the stream's entries the group has not read yet."""
    groups: Any = client.xinfo_groups(stream) if client.exists(stream) else []
    group = next((g for g in groups if g["name"] in (GROUP, GROUP.encode())), None)
    start = "-" if group is None else f"({group['last-delivered-id'].decode()}"
    entries: Any = client.xrange(stream, min=start)
    return [(m.tenant, m.id) for m in (decode_entry(fields) for _, fields in entries)]


def kill_when_leases_expired(
    worker: WorkerProcess, client: redis.Redis, keys: Keys, timeout: float = 30
) -> None:
    """SIGKILL ``worker`` and wait until its leases ran out (nobody holds a partition)."""
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    wait_until(
        lambda: not any(lease_tokens(client, keys).values()),
        timeout=timeout,
        message="the killed worker's leases ran out",
    )
