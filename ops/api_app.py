"""The HTTP API (``relayq api``): Litestar on uvicorn, msgspec Structs in and out.

Chosen by measurement (``python -m bench.api_frameworks``): Starlette + msgspec costs
less CPU per request, but Litestar validates bodies into our Structs naming the bad
field and writes the OpenAPI document from them; its cost is small beside a send's
Redis round trip. Every error is a JSON ``Problem`` (``error``, ``field``, ``status``):
422 for a bad body or parameter (nothing written), 401 without a valid key, 403 for what
the key may not do, 404 for what does not exist or is another tenant's, 503 when Redis
cannot be reached.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis.exceptions
from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig

from relayq.ops.api_auth import principal_of
from relayq.ops.api_context import ApiContext
from relayq.ops.api_controls import CONTROL_ROUTES
from relayq.ops.api_docs import PlainDocsPlugin
from relayq.ops.api_messages import MESSAGE_ROUTES
from relayq.ops.api_metrics import METRICS_ROUTES
from relayq.ops.api_models import Problem, field_of
from relayq.ops.api_receipts import RECEIPT_ROUTES
from relayq.ops.api_repairs import REPAIR_ROUTES
from relayq.ops.api_stats import STATS_ROUTES
from relayq.ops.dashboard_history import run_sampler
from relayq.ops.dashboard_routes import DASHBOARD_ROUTES
from relayq.streams.errors import (
    ConfigurationError,
    RedisUnavailableError,
    RelayqError,
    ValidationError,
)
from relayq.streams.settings import Settings

__all__ = ("ROUTE_GROUPS", "create_app")

ROUTE_GROUPS: list[list[Any]] = [
    MESSAGE_ROUTES,
    STATS_ROUTES,
    REPAIR_ROUTES,
    CONTROL_ROUTES,
    RECEIPT_ROUTES,
    METRICS_ROUTES,
    DASHBOARD_ROUTES,
]
"""Every module's routes; a module of routes adds its list here."""


def _problem(status: int, error: str, field: str | None = None) -> Response[Problem]:
    return Response(Problem(error=error, field=field, status=status), status_code=status)


def _invalid_body(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    """Litestar's 400 for a body or parameter it cannot take, as a 422 naming the field
    (from msgspec's message; Litestar's own key is the handler's parameter name)."""
    extra: Any = exc.extra
    first = extra[0] if isinstance(extra, list) and extra and isinstance(extra[0], dict) else {}
    message = str(first.get("message", ""))
    detail = f"{exc.detail}: {message}" if message else str(exc.detail)
    field = extra.get("field") if isinstance(extra, dict) else field_of(message)
    if field is None and first.get("key") not in (None, "data"):
        field = first.get("key")  # Litestar names the body field (or the parameter)
    return _problem(422, detail, field or field_of(str(exc.detail)))


def _relayq_error(_request: Request[Any, Any, Any], exc: RelayqError) -> Response[Problem]:
    if isinstance(exc, ValidationError):
        return _problem(422, str(exc), exc.field)
    if isinstance(exc, RedisUnavailableError):
        return _problem(503, "Redis cannot be reached; nothing was done")
    if isinstance(exc, ConfigurationError):  # what the settings do not allow: they say why
        return _problem(409, str(exc))
    return _problem(500, type(exc).__name__)


def _redis_error(_request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    return _problem(503, f"Redis failed ({type(exc).__name__}); nothing was done")


def _http_error(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    if exc.status_code == 400:  # a body that is not JSON at all: unprocessable, like the rest
        return _problem(422, str(exc.detail), "body")
    return _problem(exc.status_code, str(exc.detail))


def _lifespan(settings: Settings) -> Callable[[Litestar], Any]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        context = ApiContext.open(settings)
        app.state.relayq = context
        sampler = asyncio.create_task(run_sampler(context.client, context.keys))  # charts
        try:
            yield
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            await context.aclose()

    return lifespan


def _version() -> str:
    try:
        return importlib.metadata.version("relayq")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_app(settings: Settings) -> Litestar:
    """The API of ``settings``' namespace (a Redis client is made at start-up)."""
    return Litestar(
        route_handlers=[route for group in ROUTE_GROUPS for route in group],
        dependencies={"principal": Provide(principal_of)},
        exception_handlers={
            ValidationException: _invalid_body,
            RelayqError: _relayq_error,
            redis.exceptions.RedisError: _redis_error,
            HTTPException: _http_error,
        },
        lifespan=[_lifespan(settings)],
        openapi_config=OpenAPIConfig(
            title="relayq",
            version=_version(),
            description=(
                "Send conversational messages through relayq and see and repair what it "
                "holds. Authenticate with an API key: Authorization: Bearer <key>."
            ),
            path="/docs",  # "/" is the dashboard's; /openapi.json: ops.dashboard_routes
            render_plugins=[PlainDocsPlugin(path="/")],
        ),
        debug=False,
    )
