"""Waiting messages a page at a time (issue 14, item 6: messages by state): both places a
waiting message can be (a stream's unread window and its tenant's waiting list) are
listed, every message once, each conversation in its send order, a tenant filter keeps
to that tenant, and a cursor that is not one is refused naming ``after``."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from relayq.ops.message_listing import list_messages
from relayq.ops.message_page import MessagePage
from relayq.producers import SyncProducer
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.cli_runner import assert_one_line_error
from tests.support import run_cli

_WINDOW = 3
"""The unread window: with so few, most of the backlog waits in the tenants' lists."""


def _send(settings: Settings) -> dict[str, list[str]]:
    """Ids sent per conversation, in send order: 3 tenants, 2 conversations each."""
    sent: defaultdict[str, list[str]] = defaultdict(list)
    with SyncProducer(settings) as producer:
        for n in range(36):
            tenant = ("acme", "bolt", "core")[n % 3]
            conversation = f"{tenant}-{n % 2}"
            sent[conversation].append(
                producer.send(
                    tenant=tenant, conversation=conversation, recipient="+1555", payload={"n": n}
                )
            )
    return dict(sent)


def _all_pages(settings: Settings, keys: Keys, tenant: str | None, limit: int) -> list[Any]:
    async def pages() -> list[Any]:
        client = Redis.from_url(str(settings.redis_url))
        found: list[Any] = []
        after = None
        try:
            for _ in range(100):
                page: MessagePage = await list_messages(
                    client, keys, "waiting", tenant=tenant, limit=limit, after=after
                )
                assert len(page.items) <= limit
                found += page.items
                if page.next is None:
                    return found
                after = page.next
        finally:
            await client.aclose()
        raise AssertionError("the pages never ended")

    return asyncio.run(pages())


def _by_conversation(items: list[Any]) -> dict[str, list[str]]:
    listed: defaultdict[str, list[str]] = defaultdict(list)
    for item in items:
        listed[item.conversation].append(item.message_id)
    return dict(listed)


@pytest.fixture
def small_window(settings: Settings) -> Settings:
    return settings.replace(read_count=_WINDOW, read_ahead=_WINDOW)


def test_every_waiting_message_is_listed_once_in_conversation_order(
    small_window: Settings, redis_client: redis.Redis
) -> None:
    settings, keys = small_window, Keys.from_settings(small_window)
    sent = _send(settings)
    in_lists = sum(int(redis_client.llen(key)) for key in redis_client.scan_iter("{rq:*}:*:w:*"))
    assert 0 < in_lists < 36  # both places hold some (else this tests one of them only)
    items = _all_pages(settings, keys, tenant=None, limit=4)
    assert len(items) == 36 and len({item.message_id for item in items}) == 36
    assert _by_conversation(items) == sent
    assert {item.state for item in items} == {"accepted"}


def test_a_tenant_filter_lists_that_tenant_only(small_window: Settings) -> None:
    settings, keys = small_window, Keys.from_settings(small_window)
    sent = _send(settings)
    items = _all_pages(settings, keys, tenant="bolt", limit=5)
    assert {item.tenant for item in items} == {"bolt"}
    assert _by_conversation(items) == {c: ids for c, ids in sent.items() if c.startswith("bolt")}


@pytest.mark.parametrize(
    "after",
    [
        "nonsense",
        "w1:",
        "w1:WzgsMCwiIiwiIl0",  # [8, 0, "", ""]: partition 8 of 8
        "w1:WzAsMCwiIiwieC15Il0",  # [0, 0, "", "x-y"]: not an entry id
    ],
)
def test_a_cursor_that_is_not_one_is_refused(settings: Settings, after: str) -> None:
    keys = Keys.from_settings(settings)

    async def page() -> None:
        client = Redis.from_url(str(settings.redis_url))
        try:
            await list_messages(client, keys, "waiting", tenant=None, limit=5, after=after)
        finally:
            await client.aclose()

    with pytest.raises(ValidationError) as raised:
        asyncio.run(page())
    assert raised.value.field == "after"


def test_message_list_pages_through_the_command_line(small_window: Settings) -> None:
    settings = small_window
    sent = _send(settings)
    listed: list[str] = []
    after: tuple[str, ...] = ()
    for _ in range(20):
        done = run_cli(settings, "message", "list", "--state", "waiting", "--limit", "10",
                       "--json", *after)  # fmt: skip
        assert done.returncode == 0, done.stderr
        page = json.loads(done.stdout)
        listed += [item["message_id"] for item in page["items"]]
        if page["next"] is None:
            break
        after = ("--after", page["next"])
    assert sorted(listed) == sorted(i for ids in sent.values() for i in ids)
    table = run_cli(settings, "message", "list", "--state", "waiting", "--tenant", "acme")
    assert table.returncode == 0 and "acme-0" in table.stdout and "bolt" not in table.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--state", "lost"), "--state"),
        (("--state", "waiting", "--limit", "0"), "--limit"),
        (("--state", "waiting", "--limit", "1001"), "--limit"),
        (("--state", "waiting", "--after", "nonsense"), "after"),
        ((), "--state"),
    ],
)
def test_message_list_bad_arguments_exit_2_naming_them(
    settings: Settings, args: tuple[str, ...], named: str
) -> None:
    assert_one_line_error(run_cli(settings, "message", "list", *args), 2, named)
