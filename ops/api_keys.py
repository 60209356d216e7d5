"""API keys for the HTTP API: created once, stored hashed, checked on every request.

A key reads ``rq_<key_id>_<secret>``: ``key_id`` (12 hex digits) is public, shown by
``relayq keys list`` and fit for logs; ``secret`` is 32 bytes from ``secrets``
(URL-safe base64). The key itself is printed once, by ``relayq keys create``, and is
never stored, logged or traced.

Redis holds one hash, ``Keys.api_keys``: field = SHA-256 hex of the whole key, value =
an ``ApiKeyRecord`` as JSON (key_id, name, role, tenant, created_ms, created_by, and
revoked_ms/revoked_by once revoked). A revoked key keeps its record, so a second
``revoke`` can say "already revoked" and a mistyped key id is not taken for one.

Why SHA-256 and not bcrypt/argon2: a slow, salted hash protects *low-entropy* secrets
(passwords) against guessing after a leak of the hashes. A relayq key carries 256 random
bits: no guess list exists, so a fast hash is as safe, costs ~1 us per request instead of
~50 ms, and, being unsalted, lets ``verify`` find the record by the hash in one ``HGET``.
That lookup is what makes the check constant-time: nothing is compared character by
character against the presented key; the only comparison (of the record's key id
against the presented one, with ``hmac.compare_digest``) runs on public values.

Roles: ``admin`` (everything), ``read`` (read-only admin: reads every tenant, changes
nothing), ``tenant`` (sends, reads and repairs only its own tenant's messages).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Literal

import msgspec
import redis
from redis.asyncio import Redis as AsyncRedis

from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.validation import MAX_TENANT_LENGTH, check_identifier

__all__ = (
    "KEY_PREFIX",
    "ROLES",
    "ApiKeyRecord",
    "ApiPrincipal",
    "NewKey",
    "RevokeOutcome",
    "Role",
    "create_key",
    "is_key_id",
    "key_hash",
    "list_keys",
    "new_key",
    "revoke_key",
    "store_key",
    "verify",
)

Role = Literal["admin", "tenant", "read"]
ROLES: tuple[Role, ...] = ("admin", "tenant", "read")
KEY_PREFIX = "rq"
_KEY_ID_BYTES = 6
_SECRET_BYTES = 32
_MAX_KEY_LENGTH = 128  # a real key is 59 characters; anything longer is not hashed at all
_MAX_NAME_LENGTH = 128


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What Redis holds about one key (never the key)."""

    key_id: str
    name: str
    role: Role
    tenant: str | None
    created_ms: int
    created_by: str
    revoked_ms: int | None = None
    revoked_by: str | None = None


class ApiPrincipal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a verified key speaks for."""

    key_id: str
    name: str
    role: Role
    tenant: str | None

    def may_read(self, tenant: str) -> bool:
        """Whether this key may see ``tenant``'s messages, counts and dead letters."""
        return self.role != "tenant" or self.tenant == tenant

    def may_change(self, tenant: str) -> bool:
        """Whether this key may send, replay, delete or release ``tenant``'s messages."""
        return self.role == "admin" or (self.role == "tenant" and self.tenant == tenant)


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key just created: ``key`` is shown to the operator once, then forgotten."""

    key: str
    record: ApiKeyRecord


_decoder = msgspec.json.Decoder(ApiKeyRecord)


def key_hash(key: str) -> str:
    """The field a key's record is stored under: SHA-256 hex of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _checked_scope(role: Role, tenant: str | None) -> str | None:
    """``tenant`` for a tenant key (required, an identifier); None for the other roles."""
    if role not in ROLES:
        raise ValidationError("role", f"must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "tenant":
        return check_identifier("tenant", tenant, MAX_TENANT_LENGTH)
    if tenant is not None:
        raise ValidationError("tenant", f"is only for a tenant key, not an {role} key")
    return None


def _checked_name(name: str) -> str:
    return check_identifier("name", name, _MAX_NAME_LENGTH) if name else ""


def new_key(*, role: Role, created_by: str, tenant: str | None = None, name: str = "") -> NewKey:
    """A fresh key and its record, checked (ValidationError naming the field); not stored."""
    record = ApiKeyRecord(
        key_id=secrets.token_hex(_KEY_ID_BYTES),
        name=_checked_name(name),
        role=role,
        tenant=_checked_scope(role, tenant),
        created_ms=_now_ms(),
        created_by=created_by,
    )
    key = f"{KEY_PREFIX}_{record.key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewKey(key=key, record=record)


def store_key(client: redis.Redis, keys: Keys, new: NewKey) -> None:
    """Store ``new``'s record under its key's hash (the key itself is not stored)."""
    client.hsetnx(keys.api_keys, key_hash(new.key), msgspec.json.encode(new.record))


def create_key(
    client: redis.Redis,
    keys: Keys,
    *,
    role: Role,
    created_by: str,
    tenant: str | None = None,
    name: str = "",
) -> NewKey:
    """``new_key`` then ``store_key``: the key is in the result only."""
    new = new_key(role=role, created_by=created_by, tenant=tenant, name=name)
    store_key(client, keys, new)
    return new


def is_key_id(value: str) -> bool:
    """Whether ``value`` has a key id's shape (12 lowercase hex digits)."""
    return len(value) == 2 * _KEY_ID_BYTES and all(c in "0123456789abcdef" for c in value)


def _records(client: redis.Redis, keys: Keys) -> dict[str, ApiKeyRecord]:
    """Every record by the hash it is stored under."""
    stored: dict[bytes, bytes] = client.hgetall(keys.api_keys)  # type: ignore[assignment]
    return {field.decode(): _decoder.decode(value) for field, value in stored.items()}


def list_keys(client: redis.Redis, keys: Keys, *, revoked: bool = False) -> list[ApiKeyRecord]:
    """The keys' records, oldest first; revoked ones only with ``revoked``."""
    records = [r for r in _records(client, keys).values() if revoked or r.revoked_ms is None]
    return sorted(records, key=lambda record: (record.created_ms, record.key_id))


RevokeOutcome = Literal["revoked", "already revoked", "unknown"]


def revoke_key(client: redis.Redis, keys: Keys, key_id: str, *, revoked_by: str) -> RevokeOutcome:
    """Revoke the key ``key_id``: from now on ``verify`` refuses it. Idempotent."""
    for field, record in _records(client, keys).items():
        if record.key_id != key_id:
            continue
        if record.revoked_ms is not None:
            return "already revoked"
        revoked = msgspec.structs.replace(record, revoked_ms=_now_ms(), revoked_by=revoked_by)
        client.hset(keys.api_keys, field, msgspec.json.encode(revoked))
        return "revoked"
    return "unknown"


def _presented_key_id(presented: str) -> str | None:
    """The key id a presented key claims, or None when it has not a key's shape."""
    if not 0 < len(presented) <= _MAX_KEY_LENGTH:
        return None
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not is_key_id(key_id) or not secret:
        return None
    return key_id


async def verify(client: AsyncRedis, keys: Keys, presented_key: str | None) -> ApiPrincipal | None:
    """The principal ``presented_key`` speaks for, or None: missing, malformed, unknown or
    revoked. One ``HGET`` by the key's hash; the key is never logged, whatever the outcome.
    """
    key_id = _presented_key_id(presented_key or "")
    if key_id is None or presented_key is None:
        return None
    stored: bytes | str | None = await client.hget(keys.api_keys, key_hash(presented_key))
    if stored is None:
        return None
    record = _decoder.decode(stored)
    if not hmac.compare_digest(record.key_id, key_id) or record.revoked_ms is not None:
        return None
    return ApiPrincipal(
        key_id=record.key_id, name=record.name, role=record.role, tenant=record.tenant
    )
