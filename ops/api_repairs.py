"""The dead-letter and pending-entry repairs over HTTP: ``/v1/dlq`` (list with filters
and a cursor, show, replay, delete, purge) and ``/v1/pending`` (list, release), with the
same code and guarantees as the CLI's (``ops.dead_letter_repair``, ``ops.pending_*``).

A tenant key sees and repairs only its tenant's dead letters (another tenant's by id:
404) and pending entries (without the per-partition and per-consumer summaries, which
count every tenant's). Every repair is logged with the key's name as actor.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import delete, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException

from relayq.ops.api_auth import require_change, tenant_scope
from relayq.ops.api_context import ApiContext, ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.dead_letter_inspection import (
    DeadLetter,
    DeadLetterFilter,
    letter_view,
    read_dead_letter,
    read_page,
    resolve_ref,
)
from relayq.ops.dead_letter_repair import DeadLetterRepair, DeleteReport, ReplayReport
from relayq.ops.message_page import check_page_size
from relayq.ops.pending_entries import PendingFilter, PendingReport, read_pending
from relayq.ops.pending_release import ReleaseResult, release_pending
from relayq.ops.repair_log import RepairEntry, log_repair_async
from relayq.streams.errors import ValidationError

__all__ = ("REPAIR_ROUTES", "ReplayIn", "chosen_dead_letters", "dead_letter_repair")


class DeadLetterPageOut(msgspec.Struct, kw_only=True):
    items: list[dict[str, Any]]
    next: str | None
    """Pass as ``after`` for the next page; null on the last."""


class ReplayIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What to replay: ``ids`` (dead-letter ids or message ids), or every dead letter a
    filter takes (``all: true`` for every one, admin keys only)."""

    ids: list[str] | None = None
    tenant: str | None = None
    conversation: str | None = None
    kind: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    all: bool = False


class PurgeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    older_than_seconds: float
    tenant: str | None = None


class PurgeOut(msgspec.Struct, kw_only=True):
    deleted: int


class ReleaseIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    partition: int | None = None
    consumer: str | None = None
    tenant: str | None = None
    min_idle_ms: int = 0
    min_deliveries: int = 0
    limit: int = 1000


def dead_letter_repair(context: ApiContext, principal: ApiPrincipal) -> DeadLetterRepair:
    return DeadLetterRepair(
        context.client,
        context.keys,
        admission_window=context.settings.read_count,
        actor=f"api:{principal.name or principal.key_id}",
        records=context.settings.outcome_records,
    )


def _page_limit(limit: int) -> int:
    check_page_size(limit)
    return limit


@get("/v1/dlq", summary="Dead letters, filtered and paged")
async def list_dead_letters(
    request: ApiRequest,
    principal: ApiPrincipal,
    tenant: str | None = None,
    conversation: str | None = None,
    kind: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    after: str | None = None,
) -> DeadLetterPageOut:
    """Oldest first; ``next`` is the cursor of the following page (``after``)."""
    context = context_of(request)
    chosen = DeadLetterFilter(
        tenant=tenant_scope(principal, tenant),
        conversation=conversation,
        kind=kind,
        since_ms=since_ms,
        until_ms=until_ms,
    )
    page = await read_page(
        context.client, context.keys, chosen, limit=_page_limit(limit), after=after
    )
    return DeadLetterPageOut(items=[letter_view(item) for item in page.items], next=page.next)


async def _letter(context: ApiContext, principal: ApiPrincipal, ref: str) -> DeadLetter:
    """The dead letter ``ref`` names (its id or its message's id); 404 if it is gone or
    another tenant's."""
    resolved = await resolve_ref(context.client, context.keys, ref)
    letter = await read_dead_letter(context.client, context.keys, resolved) if resolved else None
    tenant = letter.message.tenant if letter is not None and letter.message else None
    if letter is None or (principal.role == "tenant" and tenant != principal.tenant):
        raise NotFoundException(f"no dead letter {ref}")
    return letter


@get("/v1/dlq/{ref:str}", summary="One dead letter and its message")
async def show_dead_letter(
    request: ApiRequest, ref: str, principal: ApiPrincipal
) -> dict[str, Any]:
    letter = await _letter(context_of(request), principal, ref)
    return letter_view(letter, detail=True)


@post("/v1/dlq/replay", summary="Queue dead letters again", status_code=200)
async def replay_dead_letters(
    request: ApiRequest, data: ReplayIn, principal: ApiPrincipal
) -> ReplayReport:
    """Each into its priority level and conversation, exactly once however often the
    request is repeated or cut off (one script admits it and deletes its dead letter)."""
    context = context_of(request)
    repair = dead_letter_repair(context, principal)
    if data.ids:
        letters = [await _letter(context, principal, ref) for ref in data.ids]
        for letter in letters:
            if letter.message is not None:
                require_change(principal, letter.message.tenant)
        return await repair.replay_ids([letter.ref for letter in letters])
    chosen = chosen_dead_letters(principal, data)
    return await repair.replay_matching(chosen)


def chosen_dead_letters(principal: ApiPrincipal, data: ReplayIn) -> DeadLetterFilter:
    tenant = tenant_scope(principal, data.tenant)
    if tenant is not None:
        require_change(principal, tenant)
    elif principal.role != "admin":
        raise PermissionDeniedException("only an admin key may replay across tenants")
    chosen = DeadLetterFilter(
        tenant=tenant,
        conversation=data.conversation,
        kind=data.kind,
        since_ms=data.since_ms,
        until_ms=data.until_ms,
    )
    if chosen == DeadLetterFilter() and not data.all:
        raise ValidationError("all", "give ids, a filter, or all: true to replay every one")
    return chosen


@delete("/v1/dlq/{ref:str}", summary="Delete one dead letter for good", status_code=200)
async def delete_dead_letter(
    request: ApiRequest, ref: str, principal: ApiPrincipal
) -> DeleteReport:
    context = context_of(request)
    letter = await _letter(context, principal, ref)
    if letter.message is not None:
        require_change(principal, letter.message.tenant)
    elif principal.role != "admin":
        raise PermissionDeniedException("only an admin key may delete an unreadable entry")
    return await dead_letter_repair(context, principal).delete_ids([letter.ref])


@post("/v1/dlq/purge", summary="Delete dead letters older than a time", status_code=200)
async def purge_dead_letters(
    request: ApiRequest, data: PurgeIn, principal: ApiPrincipal
) -> PurgeOut:
    context = context_of(request)
    tenant = tenant_scope(principal, data.tenant)
    if tenant is not None:
        require_change(principal, tenant)
    elif principal.role != "admin":
        raise PermissionDeniedException("only an admin key may purge across tenants")
    if data.older_than_seconds < 0:
        raise ValidationError("older_than_seconds", "must be >= 0")
    now_ms = int((await context.client.time())[0]) * 1000
    chosen = DeadLetterFilter(
        tenant=tenant, until_ms=now_ms - round(data.older_than_seconds * 1000)
    )
    return PurgeOut(deleted=await dead_letter_repair(context, principal).purge(chosen))


def _own_entries(principal: ApiPrincipal, report: PendingReport) -> PendingReport:
    """What a tenant key may see of a pending report: its tenant's entries, without the
    per-partition and per-consumer summaries (they count every tenant's)."""
    if principal.role != "tenant":
        return report
    return msgspec.structs.replace(report, partitions=[], consumers=[])


@get("/v1/pending", summary="Entries read by workers and not acknowledged")
async def list_pending(
    request: ApiRequest,
    principal: ApiPrincipal,
    partition: int | None = None,
    consumer: str | None = None,
    tenant: str | None = None,
    min_idle_ms: int = 0,
    min_deliveries: int = 0,
    limit: int = 100,
) -> PendingReport:
    """Per partition (and its lease), per consumer, and the entries passing the filters.
    A tenant key gets its own tenant's entries only, without the summaries."""
    context = context_of(request)
    chosen = PendingFilter(
        partition=partition,
        consumer=consumer,
        tenant=tenant_scope(principal, tenant),
        min_idle_ms=min_idle_ms,
        min_deliveries=min_deliveries,
        limit=_page_limit(limit),
    )
    return _own_entries(principal, await read_pending(context.client, context.keys, chosen))


@post("/v1/pending/release", summary="Hand entries back where no worker can be sending")
async def release(request: ApiRequest, data: ReleaseIn, principal: ApiPrincipal) -> ReleaseResult:
    """Only entries of partitions whose lease does not exist (see ``relayq pending``); a
    tenant key releases only its own tenant's, a read-only key none."""
    tenant = tenant_scope(principal, data.tenant)
    if tenant is None:
        if principal.role != "admin":
            raise PermissionDeniedException("releasing pending entries needs an admin key")
    else:
        require_change(principal, tenant)
    context = context_of(request)
    chosen = PendingFilter(**msgspec.structs.asdict(msgspec.structs.replace(data, tenant=tenant)))
    report = await read_pending(context.client, context.keys, chosen)
    released = await release_pending(context.client, context.keys, report.entries)
    entry = RepairEntry(
        actor=f"api:{principal.name or principal.key_id}",
        action="release",
        scope=" ".join(f"{k}={v}" for k, v in msgspec.structs.asdict(data).items() if v),
        count=released.released,
    )
    await log_repair_async(context.client, context.keys, entry)
    return released


REPAIR_ROUTES = [
    list_dead_letters,
    show_dead_letter,
    replay_dead_letters,
    delete_dead_letter,
    purge_dead_letters,
    list_pending,
    release,
]
