"""OpenTelemetry glue: W3C trace context in and out of messages, and the relayq tracer.

Spans are made only when the application installed a real TracerProvider, so the hot
path pays nothing for tracing it does not use.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ("extract_context", "inject_context", "tracer", "tracing_enabled")

_propagator = TraceContextTextMapPropagator()
INSTRUMENTATION_NAME = "relayq"


_PROVIDER_FROM_ENVIRONMENT = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def tracing_enabled() -> bool:
    """True when a TracerProvider other than the default no-op/proxy one is installed.

    Called per message: it reads OpenTelemetry's global slot directly, because
    ``get_tracer_provider()`` looks up an environment variable on every call while no
    provider is set (11% of a worker's CPU in a profile).
    """
    provider = getattr(trace, "_TRACER_PROVIDER", None)
    if provider is None:
        if not _PROVIDER_FROM_ENVIRONMENT:
            return False
        provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def tracer() -> trace.Tracer:
    return trace.get_tracer(INSTRUMENTATION_NAME)


def inject_context(context: Context | None = None) -> dict[str, str]:
    """The W3C ``traceparent``/``tracestate`` of ``context`` (default: the current one)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return carrier


def extract_context(carrier: dict[str, str]) -> Context:
    return _propagator.extract(carrier)
