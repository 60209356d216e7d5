"""The dashboard's Controls page: pause and resume (everything, a priority, a tenant),
limits (global, tenant, sender) and schedules, each change a POST with the session's CSRF
token, through the HTTP API's own handlers (so a read-only key changes nothing and a
tenant key only its own tenant)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.datastructures import FormMultiDict

from relayq.ops import api_controls
from relayq.ops.api_context import ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.dashboard_pages import apply_change, form_text, show_page
from relayq.streams.errors import ValidationError

__all__ = ("CONTROL_PAGES",)


async def _controls(request: ApiRequest, viewer: ApiPrincipal) -> dict[str, Any]:
    context = context_of(request)
    paused = await api_controls.paused.fn(request=request, principal=viewer)
    if viewer.role == "tenant" and viewer.tenant is not None:
        limits = {
            f"tenant {viewer.tenant}": await asyncio.to_thread(
                context.controls.tenant_limits, viewer.tenant
            )
        }
        schedules: list[dict[str, Any]] | None = None
    else:
        limits = {"global": await asyncio.to_thread(context.controls.global_limits)}
        schedules = await api_controls.schedules.fn(request=request, principal=viewer)
    return {"paused": paused, "limits": limits, "schedules": schedules,
            "levels": context.keys.levels.names, "refresh": 0}  # fmt: skip


@get("/controls")
async def controls(request: ApiRequest) -> Response[str]:
    return await show_page(request, "controls.html", _controls)


def _number(form: FormMultiDict, name: str) -> float | None:
    text = form_text(form.get(name))
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValidationError(name, f"{text[:20]!r} is not a number") from None


async def _pause(request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict) -> Any:
    scope = api_controls.PauseIn(
        priority=form_text(form.get("priority")), tenant=form_text(form.get("tenant"))
    )
    handler = api_controls.pause if form.get("action") == "pause" else api_controls.resume
    return await handler.fn(request=request, data=scope, principal=viewer)


async def _limits(request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict) -> Any:
    cap = _number(form, "cap")
    burst = _number(form, "burst")
    data = api_controls.LimitsIn(
        tenant=form_text(form.get("tenant")), sender=form_text(form.get("sender")),
        cap=int(cap) if cap is not None else None, rate=_number(form, "rate"),
        burst=int(burst) if burst is not None else None, clear=form.get("clear") == "yes",
    )  # fmt: skip
    return await api_controls.set_limits.fn(request=request, data=data, principal=viewer)


def _required(form: FormMultiDict, name: str) -> str:
    text = form_text(form.get(name))
    if text is None:
        raise ValidationError(name, "is required")
    return text


def _payload(form: FormMultiDict) -> Any:
    text = form_text(form.get("payload")) or "{}"
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ValidationError("payload", f"is not JSON: {exc}") from None


async def _schedule(request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict) -> Any:
    data = api_controls.ScheduleIn(
        every=_number(form, "every"), cron=form_text(form.get("cron")),
        tenant=_required(form, "tenant"), conversation=_required(form, "conversation"),
        recipient=_required(form, "recipient"), payload=_payload(form),
        priority=form_text(form.get("priority")),
    )  # fmt: skip
    name = _required(form, "name")
    return await api_controls.put_schedule.fn(
        request=request, name=name, data=data, principal=viewer
    )


async def _unschedule(request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict) -> Any:
    name = _required(form, "name")
    return await api_controls.delete_schedule.fn(request=request, name=name, principal=viewer)


_ACTIONS = {
    "pause": _pause,
    "resume": _pause,
    "limits": _limits,
    "schedule": _schedule,
    "unschedule": _unschedule,
}
_CONFIRMED = ("unschedule",)
"""Actions shown on a confirmation page first (they cannot be undone)."""


async def _control_action(
    request: ApiRequest, viewer: ApiPrincipal, form: FormMultiDict
) -> dict[str, Any]:
    action = str(form.get("action", ""))
    apply = _ACTIONS.get(action)
    if apply is None:
        raise ValidationError("action", f"must be one of {', '.join(_ACTIONS)}")
    if action in _CONFIRMED and form.get("confirm") != "yes":
        return {"action": action, "confirm": True, "name": form_text(form.get("name")),
                "done": None}  # fmt: skip
    return {"action": action, "confirm": False, "done": await apply(request, viewer, form)}


@post("/controls")
async def controls_action(request: ApiRequest) -> Response[str]:
    return await apply_change(request, "control_action.html", _control_action)


CONTROL_PAGES = [controls, controls_action]
