"""``POST /v1/messages`` (one, or a batch with per-item results), ``GET
/v1/messages/{id}`` (where a message is now) and ``GET /v1/batches/{id}`` (a batch's
progress)."""

from __future__ import annotations

from typing import Annotated, Any, cast

import msgspec
from litestar import get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Parameter

from relayq.ops.api_auth import require_change, tenant_scope
from relayq.ops.api_context import ApiContext, ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.api_models import (
    BatchAccepted,
    ItemResult,
    MessageIn,
    SendAccepted,
    SendBody,
    parse_item,
)
from relayq.ops.batch_progress import BatchProgress, read_batch
from relayq.ops.message_listing import list_messages
from relayq.ops.message_lookup import MessageStatus, find_message
from relayq.ops.message_page import MessagePage, check_page_size
from relayq.ops.message_search import search_messages
from relayq.producers.send_fields import SendFields
from relayq.producers.send_request import SendResult
from relayq.streams.batch import check_batch_id
from relayq.streams.errors import ValidationError

__all__ = ("MESSAGE_ROUTES",)


@post("/v1/messages", status_code=202, summary="Send one message, or a batch")
async def send_messages(
    request: ApiRequest, data: SendBody, principal: ApiPrincipal
) -> SendAccepted | BatchAccepted:
    """One message (its fields at the top level): 202 with its id. A batch
    (``{"messages": [...]}``): 202 with the batch id and one result per item, in order —
    an invalid item is refused alone (``error``, ``field``), the rest are queued. A key may
    send only for its own tenant (403 naming the item otherwise; nothing is written)."""
    context = context_of(request)
    if data.messages is not None:
        return await _send_batch(context, principal, data.messages)
    single = data.single()
    if isinstance(single, str):
        raise ValidationException(f"invalid {single}: required", extra={"field": single})
    require_change(principal, single.tenant)
    fields = cast(SendFields, msgspec.structs.asdict(single))
    return SendAccepted(id=await context.producer.send(**fields))


async def _send_batch(
    context: ApiContext, principal: ApiPrincipal, items: list[dict[str, Any]]
) -> BatchAccepted:
    parsed = [parse_item(item) for item in items]
    valid = [(i, m) for i, m in enumerate(parsed) if isinstance(m, MessageIn)]
    for _, message in valid:
        require_change(principal, message.tenant)  # 403 before anything is written
    sent = await context.producer.send_many(message.request() for _, message in valid)
    results: list[ItemResult] = []
    for index, item in enumerate(parsed):
        if not isinstance(item, MessageIn):
            results.append(ItemResult(index=index, error=f"invalid: {item[0]}", field=item[1]))
    results += [_item(index, result) for (index, _), result in zip(valid, sent, strict=True)]
    results.sort(key=lambda result: result.index)
    refused = sum(1 for result in results if result.error is not None)
    return BatchAccepted(
        batch_id=sent.batch_id,
        accepted=len(results) - refused,
        refused=refused,
        results=results,
    )


def _item(index: int, result: SendResult) -> ItemResult:
    if result.ok:
        return ItemResult(index=index, id=result.message_id, duplicate=result.duplicate)
    field = result.error.field if isinstance(result.error, ValidationError) else None
    return ItemResult(index=index, error=str(result.error), field=field)


@get("/v1/messages", summary="Messages by state, or by conversation or recipient")
async def list_by_state(
    request: ApiRequest,
    principal: ApiPrincipal,
    message_state: Annotated[str | None, Parameter(query="state")] = None,
    tenant: str | None = None,
    limit: int = 50,
    after: str | None = None,
    conversation: str | None = None,
    recipient: str | None = None,
    order: str | None = None,
) -> MessagePage:
    """``state``: waiting (accepted, not yet read: partition by partition, each tenant's in
    send order), delivered or dead_lettered (kept records, newest first), delayed (soonest
    first) or in_flight. ``conversation`` and/or ``recipient`` instead: the finished
    messages (kept records) of that conversation or recipient, newest first (``state``
    optional: delivered or dead_lettered only). ``order``: ``newest`` or ``oldest`` first,
    for delivered, dead_lettered and delayed (a cursor keeps the order it was made in).
    ``next`` is the cursor of the following page (``after``). A tenant key lists its own
    tenant's only."""
    check_page_size(limit)
    context = context_of(request)
    scope = tenant_scope(principal, tenant)
    if conversation is not None or recipient is not None:
        return await search_messages(
            context.client, context.keys, conversation=conversation, recipient=recipient,
            tenant=scope, state=message_state, limit=limit, after=after,
            indexed=context.settings.search_index,
        )  # fmt: skip
    if message_state is None:
        raise ValidationError("state", "required (or search by conversation or recipient)")
    return await list_messages(
        context.client, context.keys, message_state, tenant=scope, limit=limit, after=after,
        order=order,
    )  # fmt: skip


@get("/v1/messages/{message_id:str}", summary="Where a message is now")
async def show_message(
    request: ApiRequest, message_id: str, principal: ApiPrincipal
) -> MessageStatus:
    """The message's last known state (``relayq message show``): accepted, delayed, in
    flight, retrying, delivered or dead-lettered. 404 for an unknown id, and for another
    tenant's message."""
    context = context_of(request)
    status = await find_message(context.client, context.keys, message_id)
    if status is None or not principal.may_read(status.record.tenant):
        raise NotFoundException(f"no message {message_id}")
    return status


@get("/v1/batches/{batch_id:str}", summary="A batch's progress")
async def show_batch(request: ApiRequest, batch_id: str, principal: ApiPrincipal) -> BatchProgress:
    """Total / delivered / failed / pending and the estimated finish (``relayq batch
    show``). 404 for an unknown batch, and for one holding another tenant's messages."""
    context = context_of(request)
    check_batch_id(batch_id)
    progress = await read_batch(
        context.client, context.keys, batch_id, global_rate=context.settings.global_rate
    )
    if progress is None or not all(principal.may_read(t) for t in progress.tenants):
        raise NotFoundException(f"no batch {batch_id}")
    return progress


MESSAGE_ROUTES = [send_messages, list_by_state, show_message, show_batch]
