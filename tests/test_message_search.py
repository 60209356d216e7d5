"""Finished messages by conversation and by recipient (issue 16: the dashboard's search):
a search finds exactly the delivered and dead-lettered messages of that conversation or
recipient, newest first, every one once across pages; a tenant key never sees another
tenant's; the lookup index holds two members per kept record and loses them with the record
(retention, clean, replay); a member whose record is gone is skipped; bad input is refused
naming the field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from relayq.consumers.envelope import Envelope, PartitionState
from relayq.ops.message_page import ListedMessage
from relayq.ops.message_search import search_messages
from relayq.ops.namespace_cleaning import clean_namespace
from relayq.producers import SyncProducer
from relayq.streams.errors import ConfigurationError, ValidationError
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message
from relayq.streams.settings import Settings
from tests.api_support import ApiServer
from tests.cli_runner import assert_one_line_error
from tests.conftest import ProviderFactory
from tests.dashboard_support import signed_in
from tests.support import WorkerPool, run_cli
from tests.test_outcome_records import _acknowledge

# (tenant, conversation, recipient, how many): dead-lettered first, then delivered.
_DEAD = [("acme", "shared", "+1555000", 2), ("bolt", "shared", "+1555000", 2)]
_DELIVERED = [
    ("acme", "shared", "+1555000", 5),
    ("acme", "acme-2", "+1555111", 3),
    ("bolt", "shared", "+1555111", 4),
]
Sent = dict[tuple[str, str, str], list[str]]


def _send(settings: Settings, plan: list[tuple[str, str, str, int]]) -> Sent:
    sent: Sent = {}
    with SyncProducer(settings) as producer:
        for tenant, conversation, recipient, count in plan:
            sent[(tenant, conversation, recipient)] = [
                producer.send(tenant=tenant, conversation=conversation, recipient=recipient,
                              payload={"n": n})
                for n in range(count)
            ]  # fmt: skip
    return sent


@pytest.fixture
def finished(settings: Settings, make_provider: ProviderFactory, workers: WorkerPool) -> Sent:
    """The plan's messages, dead-lettered (one attempt, a failing provider) or delivered."""
    once = settings.replace(max_attempts=1)
    dead = _send(once, _DEAD)
    failing = make_provider(fail_rate=1.0)
    assert workers.start(failing.url, burst=True, settings=once).wait(timeout=60) == 0
    delivered = _send(settings, _DELIVERED)
    assert workers.start(make_provider().url, burst=True).wait(timeout=60) == 0
    return {
        key: dead.get(key, []) + delivered.get(key, []) for key in {*dead, *delivered}
    }  # fmt: skip


def _ids(sent: Sent, tenant: str | None = None, conversation: str | None = None,
         recipient: str | None = None) -> set[str]:  # fmt: skip
    return {
        message_id
        for (t, c, r), ids in sent.items()
        if tenant in (None, t) and conversation in (None, c) and recipient in (None, r)
        for message_id in ids
    }


def _pages(settings: Settings, keys: Keys, limit: int, **search: Any) -> list[ListedMessage]:
    """Every page of one search, each checked to hold at most ``limit`` items."""

    async def pages() -> list[ListedMessage]:
        client = Redis.from_url(str(settings.redis_url))
        found: list[ListedMessage] = []
        after = search.pop("after", None)
        try:
            for _ in range(100):
                page = await search_messages(client, keys, limit=limit, after=after, **search)
                assert len(page.items) <= limit
                found += page.items
                if page.next is None:
                    return found
                after = page.next
        finally:
            await client.aclose()
        raise AssertionError("the pages never ended")

    return asyncio.run(pages())


def _check_newest_first(items: list[ListedMessage]) -> None:
    order = [(item.at_ms, item.message_id) for item in items]
    assert order == sorted(order, reverse=True)
    assert len({item.message_id for item in items}) == len(items), "a message listed twice"


@pytest.mark.parametrize("limit", [2, 50])
def test_a_search_finds_exactly_its_messages_newest_first_on_every_page(
    settings: Settings, keys: Keys, finished: Sent, limit: int
) -> None:
    cases: list[tuple[dict[str, str], set[str]]] = [
        ({"conversation": "shared"}, _ids(finished, conversation="shared")),
        ({"conversation": "shared", "tenant": "acme"}, _ids(finished, "acme", "shared")),
        ({"recipient": "+1555000"}, _ids(finished, recipient="+1555000")),
        ({"recipient": "+1555111", "tenant": "bolt"}, _ids(finished, "bolt", None, "+1555111")),
        ({"conversation": "shared", "recipient": "+1555111"},
         _ids(finished, conversation="shared", recipient="+1555111")),
        ({"recipient": "+1555000", "state": "dead_lettered"},
         set(finished[("acme", "shared", "+1555000")][:2]
             + finished[("bolt", "shared", "+1555000")][:2])),
        ({"conversation": "nobody"}, set()),
    ]  # fmt: skip
    for search, expected in cases:
        items = _pages(settings, keys, limit, **search)
        assert {item.message_id for item in items} == expected, search
        _check_newest_first(items)
        assert all(item.record is not None and item.state in ("delivered", "dead_lettered")
                   for item in items)  # fmt: skip
    assert len(_ids(finished, recipient="+1555000")) == 9  # the plan did what it says


def test_a_tenant_key_finds_only_its_own_tenants_messages(
    settings: Settings, finished: Sent, api_server: ApiServer
) -> None:
    acme = api_server.create_key("--tenant", "acme")
    for query in ({"conversation": "shared"}, {"recipient": "+1555000"},
                  {"recipient": "+1555111"}):  # fmt: skip
        found: set[str] = set()
        after = None
        while True:
            params = {**query, "limit": 3, **({"after": after} if after else {})}
            reply = api_server.call("GET", "/v1/messages", key=acme, params=params)
            assert reply.status_code == 200, reply.text
            page = reply.json()
            assert {item["tenant"] for item in page["items"]} <= {"acme"}
            found |= {item["message_id"] for item in page["items"]}
            if page["next"] is None:
                break
            after = page["next"]
        assert found == _ids(finished, "acme", query.get("conversation"), query.get("recipient"))
    other = api_server.call(
        "GET", "/v1/messages", key=acme, params={"conversation": "shared", "tenant": "bolt"}
    )
    assert other.status_code == 403
    everyone = api_server.call("GET", "/v1/messages", params={"conversation": "shared"})
    assert {item["tenant"] for item in everyone.json()["items"]} == {"acme", "bolt"}


def test_the_dashboard_search_form_lists_the_recipients_messages(
    settings: Settings, finished: Sent, api_server: ApiServer
) -> None:
    with signed_in(api_server, api_server.admin_key) as client:
        page = client.get("/messages", params={"recipient": "+1555111", "state": "waiting"})
        assert page.status_code == 200
        assert 'name="recipient" value="+1555111"' in page.text
        shown = {m for m in _ids(finished) if f'/messages/{m}"' in page.text}
        assert shown == _ids(finished, recipient="+1555111")
        too_long = client.get("/messages", params={"conversation": "x" * 257})
        assert too_long.status_code == 422 and "conversation" in too_long.text
    with signed_in(api_server, api_server.create_key("--tenant", "bolt")) as client:
        page = client.get("/messages", params={"conversation": "shared"})
        shown = {m for m in _ids(finished) if f'/messages/{m}"' in page.text}
        assert shown == _ids(finished, "bolt", "shared")


# -- the index follows the records --------------------------------------------------------

_NAMES = ['quo"te', "back\\slash", "ünï/cödé", "plain"]
"""Conversation names the record's JSON escapes (or cjson would): the members hold them as
they are."""


def _finished_records(client: redis.Redis, keys: Keys, partition: int) -> int:
    return sum(
        int(client.zcard(keys.outcome_index(partition, state)))
        for state in ("delivered", "dead_lettered")
    )


def _pending(client: redis.Redis, keys: Keys, count: int) -> Iterator[Envelope]:
    stream = keys.stream(0, "normal")
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    state = PartitionState(partition=0, token="t", lease_deadline=0.0)
    for n in range(count):
        message = Message(id=f"M{n:03d}", tenant="acme", conversation=_NAMES[n % 4],
                          recipient=f"rcpt-{n % 3}", priority="normal", payload=b"{}",
                          created_ms=1)  # fmt: skip
        entry_id: Any = client.xadd(stream, {b"m": b"x"})
        yield Envelope(state=state, stream=stream, entry_id=entry_id, message=message)


def test_trimmed_records_take_their_lookup_members_with_them(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    envelopes = list(_pending(redis_client, keys, 10))
    redis_client.xreadgroup(GROUP, "w1", {keys.stream(0, "normal"): ">"})
    _acknowledge(settings.replace(keep_delivered_count=4), keys, [envelopes])
    kept = sorted(name.decode() for name in redis_client.hkeys(keys.outcomes(0)))  # type: ignore[union-attr]
    assert kept == ["M006", "M007", "M008", "M009"]
    members: Any = redis_client.zrange(keys.outcome_lookup(0), 0, -1)
    assert redis_client.zcard(keys.outcome_lookup(0)) == 2 * _finished_records(
        redis_client, keys, 0
    )
    assert {m.rsplit(b"\x00", 1)[1].decode() for m in members} == set(kept)
    # A name JSON escapes is indexed as it is, and found by it.
    items = _pages(settings, keys, 2, conversation='quo"te')
    assert [item.message_id for item in items] == ["M008"]
    items = _pages(settings, keys, 2, conversation="back\\slash", recipient="rcpt-0")
    assert [item.message_id for item in items] == ["M009"]
    assert [i.message_id for i in _pages(settings, keys, 1, recipient="rcpt-1")] == ["M007"]


def test_clean_and_replay_remove_the_lookup_members(
    settings: Settings, keys: Keys, redis_client: redis.Redis, finished: Sent
) -> None:
    def members() -> int:
        return sum(int(redis_client.zcard(keys.outcome_lookup(p))) for p in range(keys.partitions))

    def records() -> int:
        return sum(_finished_records(redis_client, keys, p) for p in range(keys.partitions))

    assert records() == len(_ids(finished)) and members() == 2 * records()
    replayed = run_cli(settings, "dlq", "replay", "--all", "--yes")
    assert replayed.returncode == 0, replayed.stderr
    assert records() == len(_ids(finished)) - 4 and members() == 2 * records()

    async def clean() -> None:
        client = Redis.from_url(str(settings.redis_url))
        try:
            await clean_namespace(client, keys, older_than_ms=0, delivered=True,
                                  dead_lettered=True)  # fmt: skip
        finally:
            await client.aclose()

    asyncio.run(clean())
    assert records() == 0 and members() == 0


def test_a_member_whose_record_is_gone_is_skipped_and_removed(
    settings: Settings, keys: Keys, redis_client: redis.Redis, finished: Sent
) -> None:
    gone = sorted(_ids(finished, "acme", "acme-2"))[0]
    partition = keys.partition_of("acme", "acme-2")
    redis_client.hdel(keys.outcomes(partition), gone)  # as if trimmed between two reads
    before = int(redis_client.zcard(keys.outcome_lookup(partition)))
    items = _pages(settings, keys, 50, conversation="acme-2")
    assert {item.message_id for item in items} == _ids(finished, "acme", "acme-2") - {gone}
    assert int(redis_client.zcard(keys.outcome_lookup(partition))) == before - 1


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "field"),
    [
        ({}, "conversation"),
        ({"conversation": ""}, "conversation"),
        ({"recipient": "r" * 257}, "recipient"),
        ({"conversation": "a\x00b"}, "conversation"),
        ({"conversation": "c", "state": "waiting"}, "state"),
        ({"conversation": "c", "after": "not-a-cursor"}, "after"),
    ],
)
def test_a_bad_search_is_refused_naming_the_field(
    settings: Settings, keys: Keys, search: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _pages(settings, keys, 10, **search)
    assert refused.value.field == field


def test_the_api_and_the_cli_refuse_a_bad_search_clearly(
    settings: Settings, api_server: ApiServer
) -> None:
    for params, field in (({"conversation": ""}, "conversation"),
                          ({"recipient": "r" * 300}, "recipient"), ({}, "state")):  # fmt: skip
        reply = api_server.call("GET", "/v1/messages", params=params)
        assert reply.status_code == 422, reply.text
        assert field in json.dumps(reply.json())
    done = run_cli(settings, "message", "list", "--recipient", "")
    assert_one_line_error(done, 2, "recipient")
    done = run_cli(settings, "message", "list")
    assert_one_line_error(done, 2, "state")
    done = run_cli(settings, "message", "list", "--conversation", "nobody", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"items": [], "next": None}


def test_with_the_search_index_off_no_member_is_written_and_old_ones_still_go(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    """RELAYQ_SEARCH_INDEX=0: records are kept without lookup members (the ack costs less),
    members written while it was on are still trimmed with their records, and a search
    says the index is off instead of answering from what is left."""
    envelopes = list(_pending(redis_client, keys, 10))
    redis_client.xreadgroup(GROUP, "w1", {keys.stream(0, "normal"): ">"})
    _acknowledge(settings, keys, [envelopes[:4]])  # indexed: 4 records, 8 members
    assert redis_client.zcard(keys.outcome_lookup(0)) == 8
    off = settings.replace(search_index=False, keep_delivered_count=3)
    _acknowledge(off, keys, [envelopes[4:]])  # 6 more, none indexed; trims to the newest 3
    kept = sorted(name.decode() for name in redis_client.hkeys(keys.outcomes(0)))  # type: ignore[union-attr]
    assert kept == ["M007", "M008", "M009"]
    assert redis_client.zcard(keys.outcome_lookup(0)) == 0  # the first 4's went with them
    with pytest.raises(ConfigurationError, match="RELAYQ_SEARCH_INDEX=0"):
        _pages(off, keys, 2, recipient="rcpt-1", indexed=False)
    done = run_cli(off, "message", "list", "--recipient", "rcpt-1")
    assert_one_line_error(done, 2, "RELAYQ_SEARCH_INDEX=0")
