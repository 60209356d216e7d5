"""What ``relayq message list`` prints: one page of messages in a state (the read of
``GET /v1/messages``) as a table, or the page as JSON (``--json``), with the cursor of
the next page."""

from __future__ import annotations

from redis.asyncio import Redis

from relayq.ops.command_output import print_json, print_table, table
from relayq.ops.command_session import run_work
from relayq.ops.message_listing import list_messages
from relayq.ops.message_page import MessagePage
from relayq.ops.message_search import search_messages
from relayq.ops.message_view import when
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = ("print_message_page",)


def print_message_page(
    settings: Settings,
    state: str | None,
    *,
    tenant: str | None,
    conversation: str | None = None,
    recipient: str | None = None,
    limit: int,
    after: str | None,
    order: str | None = None,
    as_json: bool,
) -> int:
    async def work(client: Redis, keys: Keys) -> MessagePage:
        if conversation is not None or recipient is not None:
            return await search_messages(
                client, keys, conversation=conversation, recipient=recipient, tenant=tenant,
                state=state, limit=limit, after=after, indexed=settings.search_index,
            )  # fmt: skip
        if state is None:
            raise ValidationError("state", "required (or --conversation / --recipient)")
        return await list_messages(
            client, keys, state, tenant=tenant, limit=limit, after=after, order=order
        )

    page = run_work(settings, work)
    if as_json:
        print_json(page)
        return 0
    made = table(f"{_title(state, conversation, recipient)} ({len(page.items)})", "message id",
                 "since", "tenant", "conversation", "priority", ">partition", "worker")  # fmt: skip
    for item in page.items:
        made.add_row(item.message_id, when(item.at_ms), item.tenant or "-",
                      item.conversation or "-", item.priority or "-", str(item.partition),
                      item.worker or "-")  # fmt: skip
    print_table(made, f"next page: --after {page.next}" if page.next else "no more pages")
    return 0


def _title(state: str | None, conversation: str | None, recipient: str | None) -> str:
    pairs = (("conversation", conversation), ("recipient", recipient))
    named = [f"{what} {name}" for what, name in pairs if name is not None]
    if not named:
        return f"{state} messages"
    return f"{state or 'finished'} messages of {' and '.join(named)}"
