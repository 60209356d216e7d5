"""Delivery receipts from the providers: ``GET``/``POST /v1/receipts/whatsapp`` (Meta's
webhook verification and status webhooks) and ``POST /v1/receipts/twilio`` (status
callbacks).

No API key: a provider cannot send one. The provider's signature over the request is the
authentication (``ops.receipt_signatures``, compared in constant time): a missing or forged
one is answered 403 and changes nothing. Without the provider's secret configured the
endpoint refuses every request (503 naming the variable), never accepting one unsigned.
A signed body that is not the provider's payload is 400. Receipts of unknown or expired
messages write nothing and are answered 200 (so the provider stops retrying), counted in
the answer: ``{"applied": n, "unchanged": u, "ignored": m}``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from litestar import MediaType, Response, get, post
from litestar.exceptions import PermissionDeniedException, ServiceUnavailableException
from litestar.params import Parameter

from relayq.ops.api_context import ApiContext, ApiRequest, context_of
from relayq.ops.api_models import Problem
from relayq.ops.receipt_signatures import (
    TWILIO_HEADER,
    WHATSAPP_HEADER,
    verify_twilio,
    verify_whatsapp,
)
from relayq.ops.receipt_store import ReceiptTally, apply_receipts
from relayq.streams.errors import ValidationError
from relayq.streams.receipts import ReceiptBatch, twilio_receipts, whatsapp_receipts

__all__ = ("RECEIPT_ROUTES",)


def _secret(value: str | None, provider: str, variable: str) -> str:
    """The provider's configured secret; 503 without one (nothing is accepted unsigned)."""
    if not value:
        raise ServiceUnavailableException(f"receipts for {provider} need {variable}")
    return value


def _not_a_payload(_request: ApiRequest, exc: ValidationError) -> Response[Problem]:
    """A signed body that is no receipt payload: 400, nothing written."""
    return Response(Problem(error=str(exc), field=exc.field, status=400), status_code=400)


_PAYLOAD_ERRORS: Any = {ValidationError: _not_a_payload}


async def _apply(context: ApiContext, batch: ReceiptBatch) -> ReceiptTally:
    tally = await apply_receipts(
        context.client, context.keys, batch.receipts, context.settings.events_keep
    )
    tally.ignored += batch.ignored
    return tally


@get(
    "/v1/receipts/whatsapp",
    media_type=MediaType.TEXT,
    summary="Meta's webhook verification (hub.challenge)",
)
async def verify_whatsapp_webhook(
    request: ApiRequest,
    mode: Annotated[str | None, Parameter(query="hub.mode")] = None,
    token: Annotated[str | None, Parameter(query="hub.verify_token")] = None,
    challenge: Annotated[str | None, Parameter(query="hub.challenge")] = None,
) -> str:
    """``hub.mode=subscribe`` with ``hub.verify_token`` equal to
    RELAYQ_WHATSAPP_VERIFY_TOKEN: 200 with ``hub.challenge`` as the text body; else 403."""
    expected = _secret(
        context_of(request).settings.whatsapp_verify_token,
        "whatsapp",
        "RELAYQ_WHATSAPP_VERIFY_TOKEN",
    )
    presented = (token or "").encode()
    if mode != "subscribe" or not hmac.compare_digest(presented, expected.encode()):
        raise PermissionDeniedException("hub.mode or hub.verify_token does not match")
    return challenge or ""


@post(
    "/v1/receipts/whatsapp",
    status_code=200,
    summary="WhatsApp status webhooks (X-Hub-Signature-256)",
    exception_handlers=_PAYLOAD_ERRORS,
)
async def whatsapp_status_webhook(request: ApiRequest) -> ReceiptTally:
    """The ``messages`` webhook: each status whose ``biz_opaque_callback_data`` is a
    relayq message id updates that message's receipt (the furthest one is kept)."""
    context = context_of(request)
    secret = _secret(context.settings.whatsapp_app_secret, "whatsapp", "RELAYQ_WHATSAPP_APP_SECRET")
    body = await request.body()
    if not verify_whatsapp(secret, body, request.headers.get(WHATSAPP_HEADER)):
        raise PermissionDeniedException(f"missing or wrong {WHATSAPP_HEADER}")
    return await _apply(context, whatsapp_receipts(body))


def _twilio_url(request: ApiRequest, status_callback: str | None) -> str:
    """The URL Twilio called, as it signed it: the configured public callback URL's
    scheme, host and path with this request's query (a proxy may have changed the rest),
    else this request's own URL."""
    if not status_callback:
        return str(request.url)
    query = request.scope["query_string"].decode("latin-1")
    return urlsplit(status_callback)._replace(query=query, fragment="").geturl()


@post(
    "/v1/receipts/twilio",
    status_code=200,
    summary="Twilio status callbacks (X-Twilio-Signature)",
    exception_handlers=_PAYLOAD_ERRORS,
)
async def twilio_status_callback(request: ApiRequest) -> ReceiptTally:
    """A form-encoded status callback; relayq's message id is the ``relayq_id`` query
    parameter of the StatusCallback URL the adapter gave."""
    context = context_of(request)
    secret = _secret(context.settings.twilio_auth_token, "twilio", "RELAYQ_TWILIO_AUTH_TOKEN")
    body = await request.body()
    params = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    url = _twilio_url(request, context.settings.twilio_status_callback)
    if not verify_twilio(secret, url, params, request.headers.get(TWILIO_HEADER)):
        raise PermissionDeniedException(f"missing or wrong {TWILIO_HEADER}")
    return await _apply(context, twilio_receipts(params, request.query_params.get("relayq_id")))


RECEIPT_ROUTES = [verify_whatsapp_webhook, whatsapp_status_webhook, twilio_status_callback]
