"""``relayq dlq``: list, show, replay, delete, purge (issue 14, item 5).

A replay puts each message back into its level and conversation and deletes its
dead-letter entry in one script, so a replay repeated or killed half-way queues no message
twice; a poison entry is refused and left; every repair is logged with its count, 0
included. Dead letters come from a real worker and a failing provider (end to end) or are
written as ``dead_letter_11.lua`` writes them (filters, paging, many entries)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from redis.typing import EncodableT, FieldT

from relayq.consumers.dead_letters import DeadLetterKind
from relayq.ops.dead_letter_inspection import DeadLetterFilter, read_page, scan_dead_letters
from relayq.ops.dead_letter_repair import DeadLetterRepair
from relayq.ops.dlq_command import KINDS
from relayq.producers import SyncProducer
from relayq.streams.codec import decode_entry, encode_message
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.message_id import new_message_id
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings
from tests.cli_runner import assert_one_line_error
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, run_cli, wait_until, worker_environment

# -- building dead letters ----------------------------------------------------------------


def _message(tenant: str, conversation: str, n: int = 0) -> Message:
    return Message(
        id=new_message_id(),
        tenant=tenant,
        conversation=conversation,
        recipient="+15550100",
        priority="normal",
        payload=json.dumps({"n": n}).encode(),
        created_ms=1_700_000_000_000,
    )


def _entry(
    keys: Keys, message: Message | None, kind: str, partition: int
) -> tuple[str, dict[FieldT, EncodableT]]:
    """The stream and fields of a dead-letter entry as ``dead_letter_11.lua`` writes it
    (``message`` None: a poison entry, in ``partition``)."""
    if message is not None:
        partition = keys.partition_of(message.tenant, message.conversation)
    original: dict[FieldT, EncodableT] = (
        {"entry:m": encode_message(message)} if message else {"entry:x": b"\xff junk"}
    )
    fields: dict[FieldT, EncodableT] = {
        "error": "HTTP 400: no such recipient",
        "kind": kind,
        "attempts": 1,
        "origin_stream": keys.stream(partition, "normal"),
        "origin_id": "1-0",
        "failed_ms": 1_700_000_000_000,
        "consumer": "w1",
        **original,
    }
    return keys.dead_letter(partition), fields


def _bury(
    client: redis.Redis,
    keys: Keys,
    message: Message | None,
    *,
    kind: str = "permanent",
    entry_id: str = "*",
    partition: int = 0,
) -> str:
    """Write one dead letter; its reference ``<partition>-<entry id>``."""
    stream, fields = _entry(keys, message, kind, partition)
    dlq_id: Any = client.xadd(stream, fields, id=entry_id)
    return f"{keys.partition_of_key(stream)}-{dlq_id.decode()}"


def _queued(client: redis.Redis, keys: Keys, tenants: Sequence[str]) -> Counter[str]:
    """Message id -> how many times it is queued (stream entries plus waiting lists)."""
    found: Counter[str] = Counter()
    for partition in range(keys.partitions):
        for level in keys.levels.names:
            entries: Any = client.xrange(keys.stream(partition, level))
            found.update(decode_entry(fields).id for _, fields in entries)
            for tenant in tenants:
                blobs: Any = client.lrange(keys.waiting(partition, level, tenant), 0, -1)
                found.update(decode_entry({b"m": blob}).id for blob in blobs)
    return found


def _dlq_length(client: redis.Redis, keys: Keys) -> int:
    return sum(int(client.xlen(keys.dead_letter(p))) for p in range(keys.partitions))


def _repairs(client: redis.Redis, keys: Keys) -> list[tuple[str, int]]:
    entries: Any = client.xrange(keys.repairs)
    return [(f[b"action"].decode(), int(f[b"count"])) for _, f in entries]


def _json(settings: Settings, *args: str) -> Any:
    done = run_cli(settings, *args, "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def _record(client: redis.Redis, keys: Keys, message_id: str, tenant: str, conv: str) -> Any:
    blob: Any = client.hget(keys.outcomes(keys.partition_of(tenant, conv)), message_id)
    return json.loads(blob)


# -- end to end ---------------------------------------------------------------------------


def test_replay_from_the_cli_delivers_once_and_a_repeat_changes_nothing(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    settings = settings.replace(max_attempts=1)
    failing = make_provider(fail_rate=1.0)  # every request answered 503
    with SyncProducer(settings) as producer:
        ids = [
            producer.send(tenant="acme", conversation="c1", recipient="+1555", payload={"n": n})
            for n in range(2)
        ]
    assert workers.start(failing.url, burst=True, settings=settings).wait(timeout=60) == 0
    assert _dlq_length(redis_client, keys) == 2
    assert _record(redis_client, keys, ids[0], "acme", "c1")["state"] == "dead_lettered"

    shown = _json(settings, "dlq", "show", ids[0])  # found by its message id
    assert shown["message_id"] == ids[0] and shown["kind"] == "exhausted"
    replay = _json(settings, "dlq", "replay", shown["id"])
    assert replay == {"replayed": 1, "gone": 0, "refused": []}
    assert _dlq_length(redis_client, keys) == 1
    record = _record(redis_client, keys, ids[0], "acme", "c1")
    assert record["state"] == "accepted" and record["conversation"] == "c1"

    fixed = make_provider()
    assert workers.start(fixed.url, burst=True, settings=settings).wait(timeout=60) == 0
    assert [d.message_id for d in fixed.deliveries()] == [ids[0]]  # same id, once
    assert _record(redis_client, keys, ids[0], "acme", "c1")["state"] == "delivered"

    again = _json(settings, "dlq", "replay", shown["id"])
    assert again == {"replayed": 0, "gone": 1, "refused": []}
    assert workers.start(fixed.url, burst=True, settings=settings).wait(timeout=60) == 0
    assert [d.message_id for d in fixed.deliveries()] == [ids[0]]
    # The durable counter is a total ever dead-lettered: a replay does not lower it.
    counter: Any = redis_client.hget(keys.counts(shown["partition"]), "dead_lettered:normal:acme")
    assert int(counter) == 2
    assert _repairs(redis_client, keys) == [("dlq.replay", 1), ("dlq.replay", 0)]


def test_a_replay_with_outcome_records_off_leaves_no_stale_record(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    """RELAYQ_OUTCOME_RECORDS=0 writes no accepted record; a replay then deletes the
    dead-lettered one rather than leave it saying "dead_lettered" of a waiting message."""
    settings = settings.replace(max_attempts=1, outcome_records=False)
    with SyncProducer(settings) as producer:
        sent = producer.send(tenant="acme", conversation="c1", recipient="+1555", payload={})
    failing = make_provider(fail_rate=1.0)
    assert workers.start(failing.url, burst=True, settings=settings).wait(timeout=60) == 0
    assert _record(redis_client, keys, sent, "acme", "c1")["state"] == "dead_lettered"
    shown = _json(settings, "dlq", "show", sent)
    assert _json(settings, "dlq", "replay", shown["id"])["replayed"] == 1
    partition = keys.partition_of("acme", "c1")
    assert redis_client.hget(keys.outcomes(partition), sent) is None
    waiting = _json(settings, "message", "list", "--state", "waiting")
    assert [item["message_id"] for item in waiting["items"]] == [sent]


def test_a_replayed_message_waits_behind_its_tenants_waiting_messages(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    """Where a replay lands (the README's answer): like a send, straight into the stream
    when its tenant has nothing waiting and the stream has room; otherwise at the end of
    its tenant's waiting list, behind what the conversation accepted meanwhile."""
    settings = settings.replace(read_count=2)
    dead = _message("acme", "c1")
    ref = _bury(redis_client, keys, dead)
    with SyncProducer(settings) as producer:
        later = [
            producer.send(tenant="acme", conversation="c1", recipient="+1555", payload={})
            for _ in range(3)
        ]
    assert _json(settings, "dlq", "replay", ref)["replayed"] == 1
    partition = keys.partition_of("acme", "c1")
    stream: Any = redis_client.xrange(keys.stream(partition, "normal"))
    waiting: Any = redis_client.lrange(keys.waiting(partition, "normal", "acme"), 0, -1)
    assert [decode_entry(f).id for _, f in stream] == later[:2]
    assert [decode_entry({b"m": b}).id for b in waiting] == [later[2], dead.id]


# -- interrupted replays ------------------------------------------------------------------

TENANTS = ("t0", "t1", "t2")


def _bury_many(client: redis.Redis, keys: Keys, count: int) -> list[Message]:
    messages = [_message(TENANTS[n % 3], f"c{n % 40}", n) for n in range(count)]
    with client.pipeline(transaction=False) as pipe:
        for message in messages:
            stream, fields = _entry(keys, message, "permanent", 0)
            pipe.xadd(stream, fields)
        pipe.execute()
    return messages


def _replay_first(settings: Settings, keys: Keys, count: int) -> int:
    """What a replay killed after ``count`` dead letters had done: the chunk function
    called for that many, as the full replay would have."""

    async def main() -> int:
        client = create_client(settings)
        try:
            repair = DeadLetterRepair(client, keys, admission_window=200, actor="test")
            letters = [
                letter async for letter in scan_dead_letters(client, keys, DeadLetterFilter())
            ][:count]
            return (await repair.replay_chunk(letters)).replayed
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_a_replay_resumed_after_an_interruption_queues_each_message_once(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    messages = _bury_many(redis_client, keys, 250)
    assert _replay_first(settings, keys, 120) == 120
    rest = _json(settings, "dlq", "replay", "--all", "--yes")
    assert rest == {"replayed": 130, "gone": 0, "refused": []}
    assert _queued(redis_client, keys, TENANTS) == Counter(m.id for m in messages)
    assert _dlq_length(redis_client, keys) == 0
    assert _json(settings, "dlq", "replay", "--all", "--yes")["replayed"] == 0
    assert _repairs(redis_client, keys) == [("dlq.replay", 130), ("dlq.replay", 0)]


def _start_replay(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relayq.ops.cli", "dlq", "replay", "--all", "--yes"],
        env=worker_environment(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def replay_process(settings: Settings) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def test_a_replay_killed_half_way_and_run_again_queues_each_message_once(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    replay_process: list[subprocess.Popen[bytes]],
) -> None:
    total = 5_000
    messages = _bury_many(redis_client, keys, total)
    process = _start_replay(settings)
    replay_process.append(process)
    wait_until(
        lambda: _dlq_length(redis_client, keys) <= total - 300 or process.poll() is not None,
        timeout=60,
        message="the replay under way",
        interval=0.002,
    )
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    left = _dlq_length(redis_client, keys)
    assert 0 < left < total, f"not killed half-way: {left} of {total} left"
    rest = _json(settings, "dlq", "replay", "--all", "--yes")
    assert rest["replayed"] == left
    assert _queued(redis_client, keys, TENANTS) == Counter(m.id for m in messages)


# -- filters and paging -------------------------------------------------------------------


def _page_through(settings: Settings, *args: str) -> list[list[str]]:
    pages: list[list[str]] = []
    after: list[str] = []
    while True:
        page = _json(settings, "dlq", "list", *args, *after)
        pages.append([item["id"] for item in page["items"]])
        if page["next"] is None:
            return pages
        assert page["next"] == pages[-1][-1]
        after = ["--after", page["next"]]


def _pages_read(settings: Settings, keys: Keys, chosen: DeadLetterFilter, limit: int) -> list[str]:
    """``_page_through`` in this process (``read_page``, what an API calls), flattened."""

    async def main() -> list[str]:
        client = create_client(settings)
        refs: list[str] = []
        after: str | None = None
        try:
            while True:
                page = await read_page(client, keys, chosen, limit=limit, after=after)
                refs += [letter.ref for letter in page.items]
                if page.next is None:
                    return refs
                after = page.next
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_list_filters_and_pages_neither_overlap_nor_skip(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    base = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    poison = _bury(redis_client, keys, None, partition=2, entry_id=f"{base - 1000}-0")
    buried: list[tuple[str, Message, str, int]] = []
    for n in range(30):
        message = _message("A" if n % 3 else "B", f"c{n % 5}", n)
        kind = "exhausted" if n % 4 == 0 else "permanent"
        at = base + n * 60_000  # one a minute
        ref = _bury(redis_client, keys, message, kind=kind, entry_id=f"{at}-0")
        buried.append((ref, message, kind, at))

    def expected(pick: Any) -> list[str]:
        chosen = [(ref, at) for ref, m, kind, at in buried if pick(m, kind, at)]
        by_position = sorted(chosen, key=lambda c: (int(c[0].split("-")[0]), c[1]))
        return [ref for ref, _ in by_position]

    pages = _page_through(settings, "--tenant", "A", "--limit", "3")
    assert all(len(page) == 3 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 3
    assert [ref for page in pages for ref in page] == expected(lambda m, k, at: m.tenant == "A")

    everything = _pages_read(settings, keys, DeadLetterFilter(), 7)
    assert sorted(everything) == sorted([*expected(lambda m, k, at: True), poison])
    assert len(set(everything)) == len(everything)

    kinds = _pages_read(settings, keys, DeadLetterFilter(kind="exhausted"), 2)
    assert kinds == expected(lambda m, k, at: k == "exhausted")

    window = ("--since", "2026-01-01T00:10:00Z", "--until", "2026-01-01T00:20:00")
    timed = [r for p in _page_through(settings, *window, "--limit", "4") for r in p]
    assert timed == expected(lambda m, k, at: base + 600_000 <= at < base + 1_200_000)

    one = _pages_read(settings, keys, DeadLetterFilter(tenant="A", conversation="c1"), 2)
    assert one == expected(lambda m, k, at: (m.tenant, m.conversation) == ("A", "c1"))
    assert _json(settings, "dlq", "list", "--older-than", "1d", "--limit", "100")["next"] is None

    table = run_cli(settings, "dlq", "list", "--tenant", "B", "--limit", "2")
    assert table.returncode == 0 and "more: --after" in table.stdout, table.stdout


# -- poison, delete, purge ----------------------------------------------------------------


def test_a_poison_entry_is_refused_by_name_and_left(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    poison = _bury(redis_client, keys, None, partition=3)
    good = _bury(redis_client, keys, _message("acme", "c1"))
    done = run_cli(settings, "dlq", "replay", "--all", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"not replayed {poison}: poison entry" in done.stdout
    assert "replayed 1;" in done.stdout
    assert _dlq_length(redis_client, keys) == 1
    shown = _json(settings, "dlq", "show", poison)
    assert shown["replayable"] is False and "x" in shown["raw_fields"]
    named = _json(settings, "dlq", "replay", poison, good)
    assert named["replayed"] == 0 and named["gone"] == 1
    assert [r["id"] for r in named["refused"]] == [poison]


def test_delete_and_purge_count_exactly_and_repeat_as_no_ops(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    old = 1_700_000_000_000
    refs = [
        _bury(redis_client, keys, _message("A", f"c{n}"), entry_id=f"{old + n}-0") for n in range(4)
    ]
    old_b = [
        _bury(redis_client, keys, _message("B", f"c{n}"), entry_id=f"{old + 10 + n}-0")
        for n in range(3)
    ]
    fresh = [_bury(redis_client, keys, _message("A", f"c{n}")) for n in range(2)]

    assert _json(settings, "dlq", "delete", refs[0], refs[1]) == {"deleted": 2, "gone": 0}
    assert _json(settings, "dlq", "delete", refs[0], refs[1]) == {"deleted": 0, "gone": 2}
    purged = _json(settings, "dlq", "purge", "--older-than", "1d", "--tenant", "B", "--yes")
    assert purged["deleted"] == len(old_b)
    assert _json(settings, "dlq", "purge", "--older-than", "1d", "--yes")["deleted"] == 2
    assert _json(settings, "dlq", "purge", "--older-than", "1d", "--yes")["deleted"] == 0
    left = _json(settings, "dlq", "list")["items"]
    assert sorted(item["id"] for item in left) == sorted(fresh)
    assert _repairs(redis_client, keys) == [
        ("dlq.delete", 2), ("dlq.delete", 0), ("dlq.purge", 3), ("dlq.purge", 2), ("dlq.purge", 0),
    ]  # fmt: skip


# -- usage --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("purge", "--older-than", "banana", "--yes"), "--older-than"),
        (("purge", "--older-than", "2h"), "--yes"),
        (("list", "--limit", "0"), "--limit"),
        (("list", "--after", "tomorrow"), "--after"),
        (("list", "--kind", "weird"), "--kind"),
        (("list", "--since", "last tuesday"), "--since"),
        (("replay",), "replay"),
        (("replay", "--all"), "--yes"),
        (("replay", "--all", "--yes", "--tenant", "A"), "--all"),
        (("replay", "0-1-0", "--tenant", "A"), "DLQ_ID"),
        (("show", "99-1-0"), "DLQ_ID"),  # partition 99 of 8: known once connected
        (("delete",), "DLQ_ID"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    settings: Settings, args: tuple[str, ...], named: str
) -> None:
    assert_one_line_error(run_cli(settings, "dlq", *args), 2, named)


def test_an_unreachable_redis_exits_1_in_one_line(settings: Settings) -> None:
    down = settings.replace(redis_url="redis://127.0.0.1:1/0")
    assert_one_line_error(run_cli(down, "dlq", "list"), 1, "127.0.0.1:1")


def test_the_cli_kinds_are_the_workers_kinds() -> None:
    assert set(KINDS) == {kind.value for kind in DeadLetterKind}


def test_show_of_a_dead_letter_that_is_gone_exits_1(settings: Settings) -> None:
    assert_one_line_error(run_cli(settings, "dlq", "show", "0-1-0"), 1, "no dead letter")
