"""Bulk sends with progress (issue 14, item 4): ``send_many`` returns a batch id, workers
count each finished message of the batch in the scripts that finish it, and ``relayq
batch show`` reports total / delivered / failed / pending and an estimated finish;
``relayq send --file`` sends a JSONL file as one batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from relayq import SendRequest, SyncProducer, ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, dead_letters, delivered_ids, run_cli, wait_until


def _requests(tenant: str, count: int, recipient: str = "+15550100") -> list[SendRequest]:
    return [
        SendRequest(
            tenant=tenant, conversation=f"{tenant}-{n % 4}", recipient=recipient, payload={"n": n}
        )
        for n in range(count)
    ]


def _show(settings: Settings, batch_id: str) -> dict[str, Any]:
    done = run_cli(settings, "batch", "show", batch_id, "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _queued(redis_client: redis.Redis, keys: Keys) -> int:
    streams = sum(
        redis_client.xlen(keys.stream(p, level))
        for p in range(keys.partitions)
        for level in keys.levels.names
    )
    return int(streams) + len(list(redis_client.scan_iter(match="*:w:*")))


def test_batch_progress_counts_delivered_and_failed_exactly(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    with SyncProducer(settings) as producer:
        sent = producer.send_many(_requests("acme", 12) + _requests("bolt", 3, "reject-1"))
        more = producer.send_many(_requests("acme", 5), batch_id=sent.batch_id)
    assert more.batch_id == sent.batch_id and all(r.ok for r in [*sent, *more])
    before = _show(settings, sent.batch_id)
    assert (before["total"], before["delivered"], before["failed"], before["pending"]) == (
        20, 0, 0, 20,
    )  # fmt: skip
    assert before["requested"] == 20 and before["tenants"] == ["acme", "bolt"]

    provider = make_provider()
    workers.start(provider.url, settings=settings)
    wait_until(lambda: len(delivered_ids(provider)) == 17, timeout=30, message="delivered")
    wait_until(lambda: len(dead_letters(redis_client, keys)) == 3, timeout=30, message="DLQ")
    after = _show(settings, sent.batch_id)
    assert (after["total"], after["delivered"], after["failed"], after["pending"]) == (
        20, 17, 3, 0,
    )  # fmt: skip
    followed = run_cli(settings, "batch", "show", sent.batch_id, "--follow")
    assert followed.returncode == 0 and "finished" in followed.stdout


def test_the_estimate_uses_the_global_rate_before_anything_is_sent(settings: Settings) -> None:
    settings = settings.replace(global_rate=10.0)
    with SyncProducer(settings) as producer:
        sent = producer.send_many(_requests("acme", 50))
    shown = run_cli(settings, "batch", "show", sent.batch_id, "--json")
    document = json.loads(shown.stdout)
    assert document["rate_per_second"] == 10.0
    # 50 pending at 10/s: 5 s from when it was read (the command's start-up after that).
    assert 5_000 <= document["estimated_finish_ms"] - document["created_ms"] <= 20_000


def test_send_file_sends_a_jsonl_file_as_one_batch(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis, keys: Keys
) -> None:
    path = tmp_path / "bulk.jsonl"
    lines = [
        json.dumps({"tenant": "acme", "conversation": f"c{n}", "recipient": "+1555", "payload": {}})
        for n in range(2500)
    ]
    lines[7] = json.dumps({"tenant": "", "conversation": "c", "recipient": "+1", "payload": {}})
    path.write_text("\n".join(lines) + "\n")
    done = run_cli(settings, "send", "--file", str(path), "--json")
    assert done.returncode == 1, done.stderr  # one line refused
    summary = json.loads(done.stdout)
    assert summary["accepted"] == 2499 and summary["requested"] == 2500
    assert [r["line"] for r in summary["refused"]] == [8] and "tenant" in summary["refused"][0][
        "error"
    ]
    assert _show(settings, summary["batch_id"])["total"] == 2499


def test_a_malformed_file_sends_nothing_and_names_the_line(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis, keys: Keys
) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"tenant": "a", "conversation": "c", "recipient": "+1", "payload": {}})
    path.write_text(f"{good}\n{{not json\n")
    done = run_cli(settings, "send", "--file", str(path))
    assert done.returncode == 2 and "line 2" in done.stderr and "Traceback" not in done.stderr
    path.write_text(f"{good}\n" + json.dumps({"tenant": "a", "colour": "red"}) + "\n")
    unknown = run_cli(settings, "send", "--file", str(path))
    assert unknown.returncode == 2 and "line 2" in unknown.stderr and "colour" in unknown.stderr
    assert _queued(redis_client, keys) == 0


def test_bad_and_unknown_batch_ids(settings: Settings) -> None:
    bad = run_cli(settings, "batch", "show", "nope")
    assert bad.returncode == 2 and "batch" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run_cli(settings, "batch", "show", "0123456789AB")
    assert unknown.returncode == 1 and "no batch 0123456789AB" in unknown.stderr
    with SyncProducer(settings) as producer, pytest.raises(ValidationError, match="batch_id"):
        producer.send_many(_requests("acme", 1), batch_id="x")
