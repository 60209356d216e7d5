"""Controls over HTTP: ``/v1/pause``, ``/v1/resume``, ``/v1/paused``, ``/v1/limits`` and
``/v1/schedules`` — the same operations as ``relayq pause/resume/paused/limits/schedules``
(``ops.controls``, ``Producer.schedule``).

A tenant key may pause, resume and read the limits of its own tenant; changing limits,
pausing the namespace or a priority, and schedules need an admin key (a read-only key
may read them).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import delete, get, post, put
from litestar.exceptions import NotFoundException, PermissionDeniedException

from relayq.ops.api_auth import require_change, require_read
from relayq.ops.api_context import ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.controls import Limits
from relayq.ops.schedules_command import schedule_document
from relayq.streams.errors import ValidationError
from relayq.streams.keys import pause_scope

__all__ = ("CONTROL_ROUTES",)


class PauseIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The scope: nothing (the whole namespace), one ``priority`` or one ``tenant``."""

    priority: str | int | None = None
    tenant: str | None = None


class PauseOut(msgspec.Struct, kw_only=True):
    scope: str
    changed: bool


class LimitsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One ``tenant``'s or ``sender``'s limits, else the global ones; ``clear`` returns
    them to the workers' defaults."""

    tenant: str | None = None
    sender: str | None = None
    cap: int | None = None
    rate: float | None = None
    burst: int | None = None
    clear: bool = False


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    every: float | None = None
    cron: str | None = None
    tenant: str
    conversation: str
    recipient: str
    payload: Any = None
    sender: str | None = None
    priority: str | int | None = None


def _admin(principal: ApiPrincipal, what: str) -> None:
    if principal.role != "admin":
        raise PermissionDeniedException(f"{what} needs an admin key")


def _scope_allowed(principal: ApiPrincipal, data: PauseIn) -> None:
    if data.tenant is not None:
        require_change(principal, data.tenant)
    else:
        _admin(principal, "pausing the namespace or a priority")
    if data.tenant is not None and data.priority is not None:
        raise ValidationError("priority", "give a priority or a tenant, not both")


@post("/v1/pause", summary="Pause sending: everything, one priority or one tenant", status_code=200)
async def pause(request: ApiRequest, data: PauseIn, principal: ApiPrincipal) -> PauseOut:
    _scope_allowed(principal, data)
    controls = context_of(request).controls
    scope = await asyncio.to_thread(controls.pause, priority=data.priority, tenant=data.tenant)
    return PauseOut(scope=scope, changed=True)


@post("/v1/resume", summary="Lift a pause", status_code=200)
async def resume(request: ApiRequest, data: PauseIn, principal: ApiPrincipal) -> PauseOut:
    _scope_allowed(principal, data)
    context = context_of(request)
    lifted = await asyncio.to_thread(
        context.controls.resume, priority=data.priority, tenant=data.tenant
    )
    level = None if data.priority is None else context.keys.levels.resolve(data.priority)
    return PauseOut(scope=pause_scope(priority=level, tenant=data.tenant), changed=lifted)


@get("/v1/paused", summary="What is paused")
async def paused(request: ApiRequest, principal: ApiPrincipal) -> list[str]:
    scopes = await asyncio.to_thread(context_of(request).controls.paused)
    if principal.role == "tenant":
        return [
            s for s in scopes if not s.startswith("tenant:") or s == f"tenant:{principal.tenant}"
        ]
    return scopes


@get("/v1/limits", summary="Limits in force (overrides; null: the workers' default)")
async def limits(
    request: ApiRequest,
    principal: ApiPrincipal,
    tenant: str | None = None,
    sender: str | None = None,
) -> Limits:
    controls = context_of(request).controls
    if tenant is not None:
        require_read(principal, tenant)
        return await asyncio.to_thread(controls.tenant_limits, tenant)
    _read_all(principal)
    if sender is not None:
        return await asyncio.to_thread(controls.sender_limits, sender)
    return await asyncio.to_thread(controls.global_limits)


def _read_all(principal: ApiPrincipal) -> None:
    if principal.role == "tenant":
        raise PermissionDeniedException("a tenant key reads its own tenant's limits only")


@put("/v1/limits", summary="Change limits at run time")
async def set_limits(request: ApiRequest, data: LimitsIn, principal: ApiPrincipal) -> Limits:
    _admin(principal, "changing limits")
    if data.tenant is not None and data.sender is not None:
        raise ValidationError("sender", "give a tenant or a sender, not both")
    return await asyncio.to_thread(_apply_limits, context_of(request).controls, data)


def _apply_limits(controls: Any, data: LimitsIn) -> Limits:
    if data.tenant is not None:
        if data.clear:
            controls.clear_tenant_limits(data.tenant)
            return controls.tenant_limits(data.tenant)  # type: ignore[no-any-return]
        return controls.set_tenant_limits(  # type: ignore[no-any-return]
            data.tenant, cap=data.cap, rate=data.rate, burst=data.burst
        )
    if data.cap is not None:
        raise ValidationError("cap", "is a tenant's limit: give tenant")
    if data.sender is not None:
        if data.clear:
            controls.clear_sender_limits(data.sender)
            return controls.sender_limits(data.sender)  # type: ignore[no-any-return]
        return controls.set_sender_limits(data.sender, rate=data.rate, burst=data.burst)  # type: ignore[no-any-return]
    if data.clear:
        controls.clear_global_limits()
        return controls.global_limits()  # type: ignore[no-any-return]
    return controls.set_global_limits(rate=data.rate, burst=data.burst)  # type: ignore[no-any-return]


@get("/v1/schedules", summary="Repeatable messages and their next due time")
async def schedules(request: ApiRequest, principal: ApiPrincipal) -> list[dict[str, Any]]:
    _read_all(principal)
    found = await context_of(request).producer.schedules()
    return [schedule_document(schedule, due) for schedule, due in found]


@put("/v1/schedules/{name:str}", summary="Create or replace a schedule")
async def put_schedule(
    request: ApiRequest, name: str, data: ScheduleIn, principal: ApiPrincipal
) -> dict[str, Any]:
    _admin(principal, "changing schedules")
    fields = msgspec.structs.asdict(data)
    every, cron = fields.pop("every"), fields.pop("cron")
    schedule = await context_of(request).producer.schedule(name, every=every, cron=cron, **fields)
    return schedule_document(schedule, None)


@delete("/v1/schedules/{name:str}", summary="Stop and delete a schedule", status_code=200)
async def delete_schedule(request: ApiRequest, name: str, principal: ApiPrincipal) -> PauseOut:
    _admin(principal, "changing schedules")
    if not await context_of(request).producer.unschedule(name):
        raise NotFoundException(f"no schedule {name!r}")
    return PauseOut(scope=f"schedule:{name}", changed=True)


CONTROL_ROUTES = [
    pause,
    resume,
    paused,
    limits,
    set_limits,
    schedules,
    put_schedule,
    delete_schedule,
]
