"""Run-time controls shared by every worker: pauses and limits, read by workers within ~1 s.

Pauses (``ns:paused``): the whole namespace, one priority, or one tenant. Workers stop
starting sends for what is paused at their next ownership tick (<= 0.5 s); in-flight sends
finish; nothing is dropped; resume continues each conversation in order.

Limits: per tenant (``keys.tenant_limits``: cap, rate, burst), per sender
(``keys.sender_limits``: rate, burst) and global (``keys.global_limits``: rate, burst)
override the workers' configured defaults from the next admission on, without a restart.
A field set to 0 switches that limit off for the tenant or sender; clearing returns it to
the default. Overrides act where flow control is on (any of RELAYQ_TENANT_CAP,
RELAYQ_GLOBAL_RATE, RELAYQ_TENANT_RATE, RELAYQ_SENDER_RATE non-zero, as by default).
"""

from __future__ import annotations

import math

import msgspec
import redis

from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys, pause_scope
from relayq.streams.settings import Settings
from relayq.streams.validation import (
    MAX_SENDER_LENGTH,
    MAX_TENANT_LENGTH,
    check_identifier,
)

__all__ = ("Controls", "Limits", "default_limits")

_TENANT_FIELDS = ("cap", "rate", "burst")
_SENDER_FIELDS = ("rate", "burst")
_GLOBAL_FIELDS = ("rate", "burst")


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Overrides in force (None: the workers' default applies)."""

    cap: int | None = None
    rate: float | None = None
    burst: int | None = None


def default_limits(settings: Settings) -> dict[str, Limits]:
    """What workers with ``settings`` apply where no override is set: per ``tenant``, per
    ``sender`` and ``global`` (0 = that limit is off)."""
    return {
        "tenant": Limits(
            cap=settings.tenant_cap, rate=settings.tenant_rate, burst=settings.tenant_burst
        ),
        "sender": Limits(rate=settings.sender_rate, burst=settings.sender_burst),
        "global": Limits(rate=settings.global_rate, burst=settings.global_burst),
    }


def _check_limit(field: str, value: float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValidationError(field, f"must be a finite number >= 0, got {value!r}")
    if field in ("cap", "burst") and value != int(value):
        raise ValidationError(field, f"must be a whole number, got {value!r}")
    if field == "burst" and value < 1:
        raise ValidationError(field, "must be at least 1")
    return str(int(value)) if field in ("cap", "burst") else repr(float(value))


def _tenant_limits(keys: Keys, tenant: str) -> str:
    return keys.tenant_limits(check_identifier("tenant", tenant, MAX_TENANT_LENGTH))


def _sender_limits(keys: Keys, sender: str) -> str:
    return keys.sender_limits(check_identifier("sender", sender, MAX_SENDER_LENGTH))


class Controls:
    """Pause, resume and limit a namespace from any process (blocking Redis client)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def pause(self, *, priority: str | int | None = None, tenant: str | None = None) -> str:
        """Pause the namespace (no arguments), one priority or one tenant; returns the scope."""
        scope = self._scope(priority, tenant)
        self._client.hset(self._keys.paused, scope, "1")
        return scope

    def resume(self, *, priority: str | int | None = None, tenant: str | None = None) -> bool:
        """Lift that pause; False when it was not paused."""
        return bool(self._client.hdel(self._keys.paused, self._scope(priority, tenant)))

    def paused(self) -> list[str]:
        """The paused scopes: ``all``, ``priority:<p>``, ``tenant:<t>``."""
        return sorted(s.decode() for s in self._client.hkeys(self._keys.paused))  # type: ignore[union-attr]

    def set_tenant_limits(
        self,
        tenant: str,
        *,
        cap: int | None = None,
        rate: float | None = None,
        burst: int | None = None,
    ) -> Limits:
        """Override the tenant's in-flight cap and/or rate (sends/s) and burst."""
        self._write(_tenant_limits(self._keys, tenant), {"cap": cap, "rate": rate, "burst": burst})
        return self.tenant_limits(tenant)

    def tenant_limits(self, tenant: str) -> Limits:
        return self._read(_tenant_limits(self._keys, tenant), _TENANT_FIELDS)

    def clear_tenant_limits(self, tenant: str) -> None:
        """Back to the workers' defaults for this tenant."""
        self._client.delete(_tenant_limits(self._keys, tenant))

    def set_sender_limits(
        self, sender: str, *, rate: float | None = None, burst: int | None = None
    ) -> Limits:
        """Override the sender's rate (sends/s; 0 = unlimited) and/or burst."""
        self._write(_sender_limits(self._keys, sender), {"rate": rate, "burst": burst})
        return self.sender_limits(sender)

    def sender_limits(self, sender: str) -> Limits:
        return self._read(_sender_limits(self._keys, sender), _SENDER_FIELDS)

    def clear_sender_limits(self, sender: str) -> None:
        """Back to the workers' defaults for this sender."""
        self._client.delete(_sender_limits(self._keys, sender))

    def set_global_limits(self, *, rate: float | None = None, burst: int | None = None) -> Limits:
        """Override the namespace-wide rate (sends/s; 0 = unlimited) and burst."""
        self._write(self._keys.global_limits, {"rate": rate, "burst": burst})
        return self.global_limits()

    def global_limits(self) -> Limits:
        return self._read(self._keys.global_limits, _GLOBAL_FIELDS)

    def clear_global_limits(self) -> None:
        self._client.delete(self._keys.global_limits)

    def _scope(self, priority: str | int | None, tenant: str | None) -> str:
        if tenant is not None:
            tenant = check_identifier("tenant", tenant, MAX_TENANT_LENGTH)
        level = None if priority is None else self._keys.levels.resolve(priority)
        return pause_scope(priority=level, tenant=tenant)

    def _write(self, key: str, values: dict[str, float | None]) -> None:
        mapping = {f: text for f, v in values.items() if (text := _check_limit(f, v)) is not None}
        if not mapping:
            raise ValidationError("limits", "give at least one of " + ", ".join(values))
        self._client.hset(key, mapping=mapping)  # type: ignore[arg-type]

    def _read(self, key: str, fields: tuple[str, ...]) -> Limits:
        raw = self._client.hmget(key, list(fields))
        values: dict[str, int | float] = {}
        for field, value in zip(fields, raw, strict=True):
            if value is not None:
                values[field] = float(value) if field == "rate" else int(value)
        return Limits(**values)  # type: ignore[arg-type]
