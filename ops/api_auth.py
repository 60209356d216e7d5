"""Who a request speaks for: its API key (``Authorization: Bearer rq_...`` or
``X-API-Key: rq_...``), verified against the hashed keys in Redis (``ops.api_keys``).

No key or an unknown one: 401. A key that may not do what it asks: 403. Another tenant's
message, batch or dead letter asked by id: 404, as if it did not exist. The key itself is
never logged or echoed.
"""

from __future__ import annotations

from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from relayq.ops.api_context import ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal, verify

__all__ = ("principal_of", "require_change", "require_read", "tenant_scope")

_BEARER = "bearer "


def _presented(request: ApiRequest) -> str | None:
    header = request.headers.get("authorization")
    if header and header[: len(_BEARER)].lower() == _BEARER:
        return header[len(_BEARER) :].strip()
    return request.headers.get("x-api-key")


async def principal_of(request: ApiRequest) -> ApiPrincipal:
    """The verified key of ``request`` (a Litestar dependency); 401 otherwise."""
    context = context_of(request)
    principal = await verify(context.client, context.keys, _presented(request))
    if principal is None:
        raise NotAuthorizedException(
            "a valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>"
        )
    return principal


def require_change(principal: ApiPrincipal, tenant: str) -> None:
    """403 unless the key may send or repair ``tenant``'s messages."""
    if not principal.may_change(tenant):
        raise PermissionDeniedException(
            f"this key may not change tenant {tenant!r}'s messages ({principal.role} key)"
        )


def require_read(principal: ApiPrincipal, tenant: str) -> None:
    """403 unless the key may read ``tenant``'s data (for a tenant named in the request)."""
    if not principal.may_read(tenant):
        raise PermissionDeniedException(f"this key may not read tenant {tenant!r}")


def tenant_scope(principal: ApiPrincipal, asked: str | None) -> str | None:
    """The tenant a listing is limited to: a tenant key's own (403 if it asked for
    another), else what was asked (None: all)."""
    if principal.role == "tenant":
        if asked is not None and asked != principal.tenant:
            require_read(principal, asked)
        return principal.tenant
    return asked
