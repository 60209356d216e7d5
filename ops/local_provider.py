"""A local HTTP provider on 127.0.0.1 for the demo, tests and benchmarks.

It accepts the webhook deliverer's POSTs, records what it accepted, and misbehaves on
purpose as configured:

- ``fail_rate``: share of requests answered 503 (retryable);
- ``throttle_rate``: share answered 429 with ``Retry-After: retry_after``;
- ``throttle_tenants``: tenant -> how many of that tenant's first requests are answered
  429 with ``Retry-After: retry_after`` (a provider throttling one tenant only);
- ``latency``: seconds to wait before answering;
- recipients starting ``reject-`` are answered 400 (permanent), ``down-`` always 500.

Fakes of real providers (``ops.fake_http``) are mounted under a path prefix
(``mount``): a request under it goes to that fake with its headers and query, and
``stop()`` also stops every mounted fake that has a ``stop()``. ``LocalProvider(fakes=True)``
mounts the WhatsApp, Twilio and SendGrid fakes (``ops.local_fakes.LocalFakes``).

``GET /received`` returns the accepted deliveries as JSON, ``GET /stats`` the counters,
``GET /attempts`` every request with its answer; ``POST /stats/reset`` restarts the
in-flight high-water marks from what is in flight now.
A minimal HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies only):
it stays out of the measurements it serves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from relayq.ops.fake_http import FakeRequest, Handler, ResetConnection

if TYPE_CHECKING:  # local_fakes imports this module (LocalProvider): imported where used
    from relayq.ops.local_fakes import LocalFakes

__all__ = (
    "Attempt",
    "Delivery",
    "LocalProvider",
    "ProviderBehaviour",
    "ProviderThread",
)


class ProviderBehaviour(msgspec.Struct, kw_only=True):
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after: float = 1.0
    latency: float = 0.0
    seed: int | None = None
    throttle_tenants: dict[str, int] = {}
    """tenant -> number of its first requests answered 429 (whatever the other rates)."""
    status_callbacks: bool = True
    """Whether the Twilio fake sends the status callbacks a send asks for (each costs the
    provider a client session and two POSTs: the demo turns them off)."""


class Delivery(msgspec.Struct, frozen=True, array_like=True):
    """One accepted request, in arrival order."""

    tenant: str
    conversation: str
    message_id: str
    created_ms: int
    received_ns: int


class Attempt(msgspec.Struct, frozen=True, array_like=True):
    """One request, whatever its answer, in the order the answers went out."""

    tenant: str
    conversation: str
    message_id: str
    status: int
    arrived_ns: int
    """When the request arrived (before any ``latency``)."""


class _Body(msgspec.Struct):
    id: str
    tenant: str
    conversation: str
    recipient: str
    created_ms: int


_T = TypeVar("_T")
_decoder = msgspec.json.Decoder(_Body)
_encoder = msgspec.json.Encoder()


@dataclasses.dataclass
class _Counters:
    requests: int = 0
    accepted: int = 0
    failed: int = 0
    throttled: int = 0
    rejected: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    tenant_in_flight: Counter[str] = dataclasses.field(default_factory=Counter)
    max_tenant_in_flight: Counter[str] = dataclasses.field(default_factory=Counter)


_QUIET_TURNS = 5
"""Turns of the loop without a new connection handler before ``stop`` returns."""


_SETTLE_SECONDS = 0.02
"""How long ``stop`` lets connections opened just before it reach their handlers."""


class LocalProvider:
    """The server; ``await start()`` inside a running loop, ``await stop()`` to end it."""

    def __init__(
        self, behaviour: ProviderBehaviour | None = None, port: int = 0, *, fakes: bool = False
    ) -> None:
        self.behaviour = behaviour or ProviderBehaviour()
        self._random = random.Random(self.behaviour.seed)
        self._port = port
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.deliveries: list[Delivery] = []
        self.attempts: list[Attempt] = []
        self.counters = _Counters()
        self._throttle_left = dict(self.behaviour.throttle_tenants)
        self._mounts: dict[str, Handler] = {}
        self.fakes: LocalFakes | None = _local_fakes(self) if fakes else None
        """With ``fakes=True``: the WhatsApp, Twilio and SendGrid fakes mounted here."""

    def mount(self, prefix: str, handler: Handler) -> None:
        """Send requests whose path starts with ``prefix`` (e.g. ``/whatsapp``) to
        ``handler``, with their headers and query."""
        self._mounts[prefix.rstrip("/")] = handler

    def base_url(self, prefix: str = "") -> str:
        """``http://127.0.0.1:<port><prefix>``."""
        return f"http://127.0.0.1:{self.port}{prefix}"

    @property
    def port(self) -> int:
        assert self._server is not None, "provider not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/deliver"

    async def start(self) -> LocalProvider:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self._port, backlog=1024
        )
        return self

    async def stop(self) -> None:
        """Stop the mounted fakes (their callbacks may still call this server), then stop
        listening and close every open connection (no socket is left to leak)."""
        await self._stop_mounted()
        # A connection a client just opened (and maybe dropped already) may still be on
        # its way through accept -> transport -> handler on this loop; closing under it
        # left the accepted socket open (seen with a send stopped by the fence right
        # after connecting). A moment lets it reach its handler, which is then closed.
        await asyncio.sleep(_SETTLE_SECONDS)
        if self._server is not None:
            self._server.close()
            self._server = None
        # A connection accepted just before close() gets its handler a few turns of the
        # loop later (accept, transport, connection_made, the handler's first step): it
        # was in no set to cancel. Keep cancelling until several turns bring no new one;
        # each cancelled handler closes its connection, released on the next turn.
        quiet_turns = 0
        while quiet_turns < _QUIET_TURNS:
            handlers = list(self._handlers)
            quiet_turns = 0 if handlers else quiet_turns + 1
            for handler in handlers:
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await asyncio.sleep(0)

    async def _stop_mounted(self) -> None:
        """Stop each object whose method is mounted (see ``_stop``)."""
        owners = {id(owner): owner for owner in map(_owner, self._mounts.values()) if owner}
        for owner in owners.values():
            await _stop(owner)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                fields: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    fields[name.strip().lower()] = value.strip()
                length = int(fields.get("content-length", 0))
                body = await reader.readexactly(length) if length else b""
                fake = self._mounted(path)
                if fake is None:
                    status, headers, payload = await self._respond(method, path, body)
                else:
                    bare, _, query = path.partition("?")
                    status, headers, payload = await fake(
                        FakeRequest(method, bare, query, fields, body)
                    )
                headers.setdefault("content-type", "application/json")
                head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(payload)}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(head.encode() + b"\r\n" + payload)
                await writer.drain()
        except ResetConnection:
            writer.transport.abort()
            return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:
            return  # stop() closes the connection; the stream protocol expects no error
        finally:
            writer.close()
            if handler is not None:
                self._handlers.discard(handler)

    def _mounted(self, path: str) -> Handler | None:
        if not self._mounts:
            return None
        for prefix, handler in self._mounts.items():
            if path.startswith(prefix + "/") or path.split("?", 1)[0] == prefix:
                return handler
        return None

    async def _respond(
        self, method: str, path: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and path == "/received":
            return 200, {}, _encoder.encode(self.deliveries)
        if method == "GET" and path == "/stats":
            return 200, {}, _encoder.encode(self.stats())
        if method == "GET" and path == "/attempts":
            return 200, {}, _encoder.encode(self.attempts)
        if method == "POST" and path == "/stats/reset":
            self.reset_stats()
            return 200, {}, _encoder.encode(self.stats())
        if method != "POST":
            return 404, {}, b'{"error":"not found"}'
        try:
            message = _decoder.decode(body)
        except msgspec.DecodeError as exc:
            return 400, {}, _encoder.encode({"error": str(exc)})
        return await self._deliver(message)

    async def _deliver(self, message: _Body) -> tuple[int, dict[str, str], bytes]:
        counters, behaviour = self.counters, self.behaviour
        arrived_ns = time.time_ns()
        counters.requests += 1
        counters.in_flight += 1
        counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        tenant = message.tenant
        counters.tenant_in_flight[tenant] += 1
        counters.max_tenant_in_flight[tenant] = max(
            counters.max_tenant_in_flight[tenant], counters.tenant_in_flight[tenant]
        )
        try:
            if behaviour.latency:
                await asyncio.sleep(behaviour.latency)
            answer = self._decide(message)
            self.attempts.append(
                Attempt(tenant, message.conversation, message.id, answer[0], arrived_ns)
            )
            return answer
        finally:
            counters.in_flight -= 1
            counters.tenant_in_flight[tenant] -= 1

    def _decide(self, message: _Body) -> tuple[int, dict[str, str], bytes]:
        counters, behaviour = self.counters, self.behaviour
        if message.recipient.startswith("reject-"):
            counters.rejected += 1
            return 400, {}, b'{"error":"invalid recipient"}'
        if message.recipient.startswith("down-"):
            counters.failed += 1
            return 500, {}, b'{"error":"recipient unreachable"}'
        if self._throttle_left.get(message.tenant, 0) > 0:
            self._throttle_left[message.tenant] -= 1
            counters.throttled += 1
            return 429, {"retry-after": f"{behaviour.retry_after:g}"}, b'{"error":"slow down"}'
        roll = self._random.random()
        if roll < behaviour.throttle_rate:
            counters.throttled += 1
            return 429, {"retry-after": f"{behaviour.retry_after:g}"}, b'{"error":"slow down"}'
        if roll < behaviour.throttle_rate + behaviour.fail_rate:
            counters.failed += 1
            return 503, {}, b'{"error":"try again"}'
        counters.accepted += 1
        self.deliveries.append(
            Delivery(
                message.tenant, message.conversation, message.id, message.created_ms, time.time_ns()
            )
        )
        return 200, {}, _encoder.encode({"id": f"prov-{counters.accepted}"})

    def stats(self) -> dict[str, Any]:
        c = self.counters
        return {
            "requests": c.requests,
            "accepted": c.accepted,
            "failed": c.failed,
            "throttled": c.throttled,
            "rejected": c.rejected,
            "max_in_flight": c.max_in_flight,
            "max_tenant_in_flight": dict(c.max_tenant_in_flight),
        }

    def reset_stats(self) -> None:
        """Restart the in-flight high-water marks from what is in flight now (to measure a
        concurrency limit from some moment on); the other counters are kept."""
        c = self.counters
        c.max_in_flight = c.in_flight
        c.max_tenant_in_flight = Counter({t: n for t, n in c.tenant_in_flight.items() if n > 0})


def _local_fakes(provider: LocalProvider) -> LocalFakes:
    """``LocalFakes`` mounted on ``provider`` (imported here: it imports this module)."""
    from relayq.ops.local_fakes import LocalFakes

    return LocalFakes(provider)


def _owner(handler: Handler) -> object | None:
    """The object a mounted bound method belongs to (None for a plain function)."""
    return getattr(handler, "__self__", None)


async def _stop(fake: object) -> None:
    """``fake.stop()`` if it has one, awaited if it is a coroutine (the fakes differ)."""
    stop = getattr(fake, "stop", None)
    stopped = stop() if callable(stop) else None
    if inspect.isawaitable(stopped):
        await stopped


class ProviderThread:
    """A LocalProvider on its own event loop in a daemon thread (for sync callers, tests)."""

    def __init__(
        self, behaviour: ProviderBehaviour | None = None, port: int = 0, *, fakes: bool = False
    ) -> None:
        self.provider = LocalProvider(behaviour, port, fakes=fakes)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> ProviderThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.provider.start(), self._loop).result(10)
        return self

    @property
    def url(self) -> str:
        return self.provider.url

    def deliveries(self) -> list[Delivery]:
        """A snapshot of what was accepted so far, in arrival order."""
        return self.on_loop(lambda: list(self.provider.deliveries))

    def attempts(self) -> list[Attempt]:
        """A snapshot of every request answered so far (any status), in answer order."""
        return self.on_loop(lambda: list(self.provider.attempts))

    def stats(self) -> dict[str, Any]:
        return self.on_loop(self.provider.stats)

    def reset_stats(self) -> None:
        """See ``LocalProvider.reset_stats``."""
        self.on_loop(self.provider.reset_stats)

    def on_loop(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the provider's loop (its state, and its fakes', is only
        touched there)."""

        async def call() -> _T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.provider.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> ProviderThread:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
