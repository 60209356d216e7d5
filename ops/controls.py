"""Run-time controls shared by every worker: pauses and limits, read by workers within ~1 s.

Pauses (``ns:paused``): the whole namespace, one priority, one tenant or one channel. Workers stop
starting sends for what is paused at their next ownership tick (<= 0.5 s); in-flight sends
finish; nothing is dropped; resume continues each conversation in order.

Limits: per tenant (``keys.tenant_limits``: cap, rate, burst), per sender
(``keys.sender_limits``: rate, burst), per channel (``keys.channel_limits``: cap, rate,
burst; ``consumers.channel_gate``) and global (``keys.global_limits``: rate, burst, cap)
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
from relayq.streams.settings import Settings, parse_channel_limits
from relayq.streams.validation import (
    MAX_SENDER_LENGTH,
    MAX_TENANT_LENGTH,
    check_channel,
    check_identifier,
)

__all__ = ("Controls", "Limits", "channel_defaults", "default_limits")

_TENANT_FIELDS = ("cap", "rate", "burst")
_SENDER_FIELDS = ("rate", "burst")
_GLOBAL_FIELDS = ("rate", "burst", "cap")
_CHANNEL_FIELDS = ("cap", "rate", "burst")


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
        "global": Limits(
            rate=settings.global_rate, burst=settings.global_burst, cap=settings.global_cap
        ),
    }


def channel_defaults(settings: Settings, channel: str) -> Limits:
    """The limits ``settings`` give ``channel`` (RELAYQ_CHANNEL_LIMITS; 0 = none)."""
    configured = parse_channel_limits(settings.channel_limits or "{}").get(channel)
    if configured is None:
        return Limits(cap=0, rate=0.0, burst=1)
    return Limits(cap=configured.cap, rate=configured.rate, burst=configured.burst)


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


def _channel_limits(keys: Keys, channel: str) -> str:
    return keys.channel_limits(check_channel(channel))


class Controls:
    """Pause, resume and limit a namespace from any process (blocking Redis client)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def pause(
        self,
        *,
        priority: str | int | None = None,
        tenant: str | None = None,
        channel: str | None = None,
    ) -> str:
        """Pause the namespace (no arguments), one priority, one tenant or one channel;
        returns the scope."""
        scope = self._scope(priority, tenant, channel)
        self._client.hset(self._keys.paused, scope, "1")
        return scope

    def resume(
        self,
        *,
        priority: str | int | None = None,
        tenant: str | None = None,
        channel: str | None = None,
    ) -> bool:
        """Lift that pause; False when it was not paused."""
        scope = self._scope(priority, tenant, channel)
        return bool(self._client.hdel(self._keys.paused, scope))

    def paused(self) -> list[str]:
        """The paused scopes: ``all``, ``priority:<p>``, ``tenant:<t>``, ``channel:<c>``."""
        return sorted(s.decode() for s in self._client.hkeys(self._keys.paused))  # type: ignore[union-attr]

    def pause_reasons(self) -> dict[str, str]:
        """Why each scope is paused, where a worker said (a channel whose provider rejected
        its credentials); an operator's pause has no reason."""
        raw = self._client.hgetall(self._keys.paused)
        return {k.decode(): v.decode() for k, v in raw.items() if v != b"1"}  # type: ignore[union-attr]

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

    def set_global_limits(
        self, *, rate: float | None = None, burst: int | None = None, cap: int | None = None
    ) -> Limits:
        """Override the namespace-wide rate (sends/s; 0 = unlimited), burst and cap (sends
        in flight at once over all workers; 0 = none)."""
        self._write(self._keys.global_limits, {"rate": rate, "burst": burst, "cap": cap})
        return self.global_limits()

    def set_channel_limits(
        self,
        channel: str,
        *,
        cap: int | None = None,
        rate: float | None = None,
        burst: int | None = None,
    ) -> Limits:
        """Set the channel's in-flight cap and/or rate (sends/s) and burst, cluster-wide."""
        key = _channel_limits(self._keys, channel)
        self._write(key, {"cap": cap, "rate": rate, "burst": burst})
        self._client.sadd(self._keys.limited_channels, channel)
        return self.channel_limits(channel)

    def channel_limits(self, channel: str) -> Limits:
        return self._read(_channel_limits(self._keys, channel), _CHANNEL_FIELDS)

    def clear_channel_limits(self, channel: str) -> None:
        """No limits of its own for this channel (back to RELAYQ_CHANNEL_LIMITS)."""
        self._client.delete(_channel_limits(self._keys, channel))
        self._client.srem(self._keys.limited_channels, channel)

    def global_limits(self) -> Limits:
        return self._read(self._keys.global_limits, _GLOBAL_FIELDS)

    def clear_global_limits(self) -> None:
        self._client.delete(self._keys.global_limits)

    def _scope(
        self, priority: str | int | None, tenant: str | None, channel: str | None = None
    ) -> str:
        if tenant is not None:
            tenant = check_identifier("tenant", tenant, MAX_TENANT_LENGTH)
        if channel is not None:
            channel = check_channel(channel)
        level = None if priority is None else self._keys.levels.resolve(priority)
        return pause_scope(priority=level, tenant=tenant, channel=channel)

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
