"""The PRODUCER span of one ``send``, the same for both producers (when tracing is on).

Attributes follow OpenTelemetry's messaging conventions: ``messaging.system``,
``messaging.message.id``, and relayq's tenant, conversation and sender. A send that went
straight to the provider (direct send) says so in ``relayq.direct``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from opentelemetry.trace import SpanKind

from relayq.producers.send_request import SendRequest, SendResult
from relayq.streams.telemetry import tracer, tracing_enabled

__all__ = ("SendSpan",)


def _attributes(request: SendRequest) -> dict[str, str]:
    attributes = {
        "messaging.system": "relayq",
        "relayq.tenant": request.tenant,
        "relayq.conversation": request.conversation,
    }
    if request.sender is not None:
        attributes["relayq.sender"] = request.sender
    return attributes


class SendSpan:
    """``with SendSpan(request) as span: ...; span.sent(result)``; free without tracing.

    A plain ``with``: it serves async code as well (awaits inside the block are fine).
    """

    __slots__ = ("_context", "_span")

    def __init__(self, request: SendRequest) -> None:
        self._context: Any = None
        self._span: Any = None
        if tracing_enabled():
            self._context = tracer().start_as_current_span(
                "relayq send", kind=SpanKind.PRODUCER, attributes=_attributes(request)
            )

    @property
    def traced(self) -> bool:
        """Whether a span is open (then the message carries its trace context)."""
        return self._context is not None

    def __enter__(self) -> SendSpan:
        if self._context is not None:
            self._span = self._context.__enter__()
        return self

    def sent(self, result: SendResult) -> None:
        """Record what the send returned."""
        if self._span is not None and result.message_id is not None:
            self._span.set_attribute("messaging.message.id", result.message_id)
            self._span.set_attribute("relayq.direct", result.direct)

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._context is not None:
            self._context.__exit__(t, e, tb)
