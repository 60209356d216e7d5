"""API keys: shown once, stored only as a hash, refused once revoked, never logged.

``relayq keys create|list|revoke`` against a real redis-server, and ``verify`` (what the
HTTP API calls on every request) on right, wrong, revoked and malformed keys.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import structlog
from redis.asyncio import Redis as AsyncRedis

from relayq.ops.api_keys import (
    ApiPrincipal,
    create_key,
    key_hash,
    list_keys,
    revoke_key,
    verify,
)
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings
from tests.cli_runner import assert_one_line_error
from tests.support import run_cli


@pytest.fixture
async def async_client(settings: Settings) -> AsyncIterator[AsyncRedis]:
    client = create_client(settings)
    try:
        yield client
    finally:
        await client.aclose()


def _json(done: subprocess.CompletedProcess[str]) -> object:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def _create(settings: Settings, *args: str) -> dict[str, object]:
    document = _json(run_cli(settings, "keys", "create", *args, "--json"))
    assert isinstance(document, dict)
    return document


def _listed(settings: Settings, *args: str) -> list[dict[str, object]]:
    document = _json(run_cli(settings, "keys", "list", "--json", *args))
    assert isinstance(document, list)
    return document


def _everything_in(client: redis.Redis) -> bytes:
    """Every key name and every value Redis holds, as one blob to search."""
    readers: dict[bytes, Callable[[bytes], object]] = {
        b"string": client.get,
        b"hash": client.hgetall,
        b"list": lambda key: client.lrange(key, 0, -1),
        b"set": client.smembers,
        b"zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        b"stream": client.xrange,
    }
    parts = []
    for key in client.scan_iter(count=1000):
        kind: bytes = client.type(key)  # type: ignore[assignment]
        parts += [key, repr(readers[kind](key)).encode()]
    return b"\n".join(parts)


def test_create_list_revoke_round_trip(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    created = _create(settings, "--tenant", "acme", "--name", "billing service")
    key_id = created["key_id"]
    assert isinstance(key_id, str) and len(key_id) == 12
    assert str(created["key"]).startswith(f"rq_{key_id}_")
    assert (created["role"], created["tenant"], created["name"]) == (
        "tenant",
        "acme",
        "billing service",
    )
    admin = _create(settings, "--admin")
    reader = _create(settings, "--read-only", "--name", "dashboard")
    assert (admin["role"], admin["tenant"], reader["role"]) == ("admin", None, "read")

    listed = _listed(settings)
    assert [entry["key_id"] for entry in listed] == [key_id, admin["key_id"], reader["key_id"]]
    assert {"key", "hash"}.isdisjoint(listed[0])
    assert listed[0]["created_ms"] == created["created_ms"]

    revoked = _json(run_cli(settings, "keys", "revoke", key_id, "--json"))
    assert revoked == {"key_id": key_id, "outcome": "revoked"}
    again = _json(run_cli(settings, "keys", "revoke", key_id, "--json"))
    assert again == {"key_id": key_id, "outcome": "already revoked"}
    assert key_id not in [entry["key_id"] for entry in _listed(settings)]
    with_revoked = _listed(settings, "--revoked")
    assert isinstance(with_revoked[0]["revoked_ms"], int)

    entries: list[tuple[bytes, dict[bytes, Any]]] = redis_client.xrange(keys.repairs)  # type: ignore[assignment]
    repairs = [fields for _id, fields in entries]
    revokes = [entry for entry in repairs if entry[b"action"] == b"keys.revoke"]
    assert [(entry[b"scope"], entry[b"count"]) for entry in revokes] == [
        (f"key_id={key_id}".encode(), b"1"),
        (f"key_id={key_id}".encode(), b"0"),
    ]


def test_the_table_views_and_revoking_an_unknown_id(settings: Settings) -> None:
    created = run_cli(settings, "keys", "create", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("rq_") and created.stdout.count(key) == 1
    key_id = key.split("_")[1]
    assert key_id in created.stdout and "acme" in created.stdout

    listed = run_cli(settings, "keys", "list")
    assert listed.returncode == 0 and key_id in listed.stdout and "tenant" in listed.stdout

    done = run_cli(settings, "keys", "revoke", "0123456789ab")
    assert_one_line_error(done, 1, "no key has id '0123456789ab'")
    assert run_cli(settings, "keys", "revoke", key_id).stdout == f"revoked {key_id}\n"
    assert run_cli(settings, "keys", "revoke", key_id).stdout == f"{key_id} was already revoked\n"
    assert run_cli(settings, "keys", "list").stdout.startswith("no active keys")


async def test_verify_accepts_the_right_key_only(
    redis_client: redis.Redis, async_client: AsyncRedis, keys: Keys
) -> None:
    tenant = create_key(redis_client, keys, role="tenant", tenant="acme", created_by="test")
    admin = create_key(redis_client, keys, role="admin", created_by="test")
    with structlog.testing.capture_logs() as logs:
        assert await verify(async_client, keys, tenant.key) == ApiPrincipal(
            key_id=tenant.record.key_id, name="", role="tenant", tenant="acme"
        )
        principal = await verify(async_client, keys, admin.key)
        assert principal is not None and principal.role == "admin"

        wrong_secret = tenant.key[:-4] + ("AAAA" if not tenant.key.endswith("AAAA") else "BBBB")
        other_id = f"rq_{admin.record.key_id}_{tenant.key.split('_', 2)[2]}"
        for wrong in (wrong_secret, other_id, tenant.key + "x", tenant.key.upper()):
            assert await verify(async_client, keys, wrong) is None, wrong
        for malformed in (
            None,
            "",
            "rq",
            "rq__",
            f"rq_{tenant.record.key_id}_",
            "Bearer x",
            tenant.key.split("_", 2)[2],
            "rq_" + "a" * 500,
        ):
            assert await verify(async_client, keys, malformed) is None, malformed

        assert revoke_key(redis_client, keys, tenant.record.key_id, revoked_by="test") == "revoked"
        assert await verify(async_client, keys, tenant.key) is None
        assert await verify(async_client, keys, admin.key) is not None
    assert tenant.key not in repr(logs) and admin.key not in repr(logs)


def test_what_each_role_may_do() -> None:
    def principal(role: str, tenant: str | None = None) -> ApiPrincipal:
        return ApiPrincipal(key_id="0" * 12, name="", role=role, tenant=tenant)  # type: ignore[arg-type]

    acme = principal("tenant", "acme")
    assert (acme.may_read("acme"), acme.may_change("acme")) == (True, True)
    assert (acme.may_read("globex"), acme.may_change("globex")) == (False, False)
    reader = principal("read")
    assert (reader.may_read("globex"), reader.may_change("globex")) == (True, False)
    admin = principal("admin")
    assert (admin.may_read("globex"), admin.may_change("globex")) == (True, True)


def test_a_key_is_never_in_redis_nor_on_stderr_nor_listed(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    shown = []
    for args in (("--tenant", "acme", "--json"), ("--admin",), ("--read-only", "--json")):
        done = run_cli(settings, "--log-level", "debug", "keys", "create", *args)
        assert done.returncode == 0, done.stderr
        key = json.loads(done.stdout)["key"] if "--json" in args else done.stdout.split()[-1]
        assert key.startswith("rq_") and key not in done.stderr
        shown.append(key)
    secrets = [key.split("_", 2)[2] for key in shown]

    listings = [run_cli(settings, "keys", "list", *flags) for flags in ((), ("--json",))]
    key_id = shown[0].split("_")[1]
    revoke = run_cli(settings, "--log-level", "debug", "keys", "revoke", key_id)
    listings.append(run_cli(settings, "keys", "list", "--revoked", "--json"))
    stored = _everything_in(redis_client)
    assert key_hash(shown[0]).encode() in stored  # what Redis holds: the hash
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in revoke.stdout + revoke.stderr
        for listing in listings:
            assert secret not in listing.stdout + listing.stderr
    for key in shown:
        for listing in listings:
            assert key_hash(key) not in listing.stdout
    assert {record.key_id for record in list_keys(redis_client, keys, revoked=True)} == {
        key.split("_")[1] for key in shown
    }


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("create",), "--tenant --admin --read-only"),
        (("create", "--tenant", "acme", "--admin"), "--admin"),
        (("create", "--tenant", ""), "tenant"),
        (("create", "--tenant", "ac\x01me"), "tenant"),
        (("create", "--admin", "--name", "x" * 200), "name"),
        (("revoke",), "KEY_ID"),
        (("revoke", "not-an-id"), "KEY_ID"),
        (("list", "--bogus"), "--bogus"),
        ((), "action"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    settings: Settings, args: tuple[str, ...], named: str
) -> None:
    assert_one_line_error(run_cli(settings, "keys", *args), 2, named)


def test_a_key_pasted_as_a_key_id_is_not_echoed(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    key = create_key(redis_client, keys, role="admin", created_by="test").key
    done = run_cli(settings, "keys", "revoke", key)
    assert_one_line_error(done, 2, "KEY_ID")
    assert key not in done.stderr and key.split("_", 2)[2] not in done.stderr
