"""The RELAYQ_* environment every relayq benchmark process gets, producers and workers alike.

Flow control is OFF unless a scenario turns it on: relayq's defaults are a per-tenant cap of
5 in flight and 80 msg/s globally (the seed's provider limits), which would measure the
limits, not the machinery. The flow-control scenario sets its own (high) limits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from relayq.streams.settings import Settings

__all__ = ("DELIVERER", "FLOW_CONTROL_OFF", "NAMESPACE", "relayq_env", "relayq_settings")

NAMESPACE = "bench"
DELIVERER = "bench.relayq_deliverer:counting"
"""The no-op deliverer that counts (see :mod:`bench.relayq_deliverer`)."""

FLOW_CONTROL_OFF: dict[str, str] = {
    "RELAYQ_TENANT_CAP": "0",
    "RELAYQ_GLOBAL_RATE": "0",
    "RELAYQ_TENANT_RATE": "0",
}


def relayq_env(url: str, **overrides: str) -> dict[str, str]:
    """Variables for a relayq producer or worker on ``url``; ``overrides`` win."""
    env = {
        "REDIS_URL": url,
        "RELAYQ_NAMESPACE": NAMESPACE,
        "RELAYQ_DELIVERER": DELIVERER,
        "RELAYQ_METRICS_INTERVAL_SECONDS": "3600",
        "RELAYQ_SHUTDOWN_GRACE_SECONDS": "5",
        **FLOW_CONTROL_OFF,
    }
    env.update(overrides)
    return env


def relayq_settings(url: str, env: Mapping[str, str] | None = None) -> Settings:
    """Settings as a process started with :func:`relayq_env` (and ``env``) would read them:
    this process's own ``RELAYQ_*`` variables too (a child started with a scenario's
    settings, as its workers are), then ``env``."""
    variables = relayq_env(url)
    variables.update({k: v for k, v in os.environ.items() if k.startswith("RELAYQ_")})
    variables.update(env or {})
    return Settings.from_env(variables)
