"""Run-time controls (ops/controls.py) against a real Redis: bad input is refused with a
ValidationError naming the field and nothing is written; good input is stored where the
workers read it, and reads back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from relayq.ops.controls import Controls, Limits
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.support import run_cli

BAD_CALLS: list[tuple[str, Callable[[Controls], object], str]] = [
    ("negative tenant rate", lambda c: c.set_tenant_limits("t", rate=-1.0), "rate"),
    ("negative cap", lambda c: c.set_tenant_limits("t", cap=-1), "cap"),
    ("fractional cap", lambda c: c.set_tenant_limits("t", cap=2.5), "cap"),  # type: ignore[arg-type]
    ("cap as text", lambda c: c.set_tenant_limits("t", cap="5"), "cap"),  # type: ignore[arg-type]
    ("cap as bool", lambda c: c.set_tenant_limits("t", cap=True), "cap"),
    ("rate not a number", lambda c: c.set_tenant_limits("t", rate=float("nan")), "rate"),
    ("infinite rate", lambda c: c.set_tenant_limits("t", rate=float("inf")), "rate"),
    ("rate as text", lambda c: c.set_tenant_limits("t", rate="fast"), "rate"),  # type: ignore[arg-type]
    ("tenant burst 0", lambda c: c.set_tenant_limits("t", burst=0), "burst"),
    ("good cap, bad rate", lambda c: c.set_tenant_limits("t", cap=3, rate=-2.0), "rate"),
    ("no limit given", lambda c: c.set_tenant_limits("t"), "limits"),
    ("empty tenant", lambda c: c.set_tenant_limits("", cap=1), "tenant"),
    ("tenant with newline", lambda c: c.set_tenant_limits("a\nb", cap=1), "tenant"),
    ("tenant with NUL", lambda c: c.set_tenant_limits("a\x00b", cap=1), "tenant"),
    ("tenant with C1 control", lambda c: c.set_tenant_limits("a\x85b", cap=1), "tenant"),
    ("tenant too long", lambda c: c.set_tenant_limits("t" * 129, cap=1), "tenant"),
    ("tenant not text", lambda c: c.set_tenant_limits(7, cap=1), "tenant"),  # type: ignore[arg-type]
    ("read empty tenant", lambda c: c.tenant_limits(""), "tenant"),
    ("clear tenant with newline", lambda c: c.clear_tenant_limits("a\nb"), "tenant"),
    ("negative sender rate", lambda c: c.set_sender_limits("s", rate=-1.0), "rate"),
    ("sender burst 0", lambda c: c.set_sender_limits("s", burst=0), "burst"),
    ("fractional sender burst", lambda c: c.set_sender_limits("s", burst=1.5), "burst"),  # type: ignore[arg-type]
    ("no sender limit given", lambda c: c.set_sender_limits("s"), "limits"),
    ("empty sender", lambda c: c.set_sender_limits("", rate=1.0), "sender"),
    ("sender with newline", lambda c: c.set_sender_limits("a\nb", rate=1.0), "sender"),
    ("sender with C1 control", lambda c: c.set_sender_limits("a\x85b", rate=1.0), "sender"),
    ("sender too long", lambda c: c.set_sender_limits("s" * 129, rate=1.0), "sender"),
    ("sender not text", lambda c: c.set_sender_limits(7, rate=1.0), "sender"),  # type: ignore[arg-type]
    ("read sender with tab", lambda c: c.sender_limits("a\tb"), "sender"),
    ("clear empty sender", lambda c: c.clear_sender_limits(""), "sender"),
    ("negative global rate", lambda c: c.set_global_limits(rate=-5.0), "rate"),
    ("global burst 0", lambda c: c.set_global_limits(burst=0), "burst"),
    ("global burst as text", lambda c: c.set_global_limits(burst="10"), "burst"),  # type: ignore[arg-type]
    ("no global limit given", lambda c: c.set_global_limits(), "limits"),
    ("unknown priority", lambda c: c.pause(priority="urgent"), "priority"),
    ("pause empty tenant", lambda c: c.pause(tenant=""), "tenant"),
    ("pause tenant with tab", lambda c: c.pause(tenant="a\tb"), "tenant"),
    ("resume unknown priority", lambda c: c.resume(priority="later"), "priority"),
]


@pytest.fixture
def controls(redis_client: redis.Redis, keys: Keys) -> Controls:
    return Controls(redis_client, keys)


@pytest.mark.parametrize(
    ("call", "field"),
    [(call, field) for _, call, field in BAD_CALLS],
    ids=[name for name, *_ in BAD_CALLS],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    controls: Controls, redis_client: redis.Redis, call: Callable[[Controls], object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        call(controls)
    assert caught.value.field == field
    assert f"invalid {field}" in str(caught.value)
    assert redis_client.dbsize() == 0, redis_client.keys("*")


def test_pausing_a_priority_and_a_tenant_at_once_is_refused(
    controls: Controls, redis_client: redis.Redis
) -> None:
    with pytest.raises(ValueError, match="not several at once"):
        controls.pause(priority="high", tenant="t")
    with pytest.raises(ValueError, match="not several at once"):
        controls.pause(tenant="t", channel="whatsapp")
    assert redis_client.dbsize() == 0


def test_limits_are_stored_where_workers_read_them_and_clear_back_to_defaults(
    controls: Controls, redis_client: redis.Redis, keys: Keys
) -> None:
    assert controls.tenant_limits("t") == Limits()
    assert controls.set_tenant_limits("t", cap=2, rate=1.5, burst=3) == Limits(
        cap=2, rate=1.5, burst=3
    )
    # A partial update changes only what it names; 0 is a valid value (that limit off).
    assert controls.set_tenant_limits("t", cap=0) == Limits(cap=0, rate=1.5, burst=3)
    stored: Any = redis_client.hgetall(keys.tenant_limits("t"))
    assert {k.decode(): float(v) for k, v in stored.items()} == {
        "cap": 0,
        "rate": 1.5,
        "burst": 3,
    }
    assert controls.tenant_limits("other") == Limits()  # per tenant

    assert controls.set_global_limits(rate=200, burst=10) == Limits(rate=200.0, burst=10)
    assert redis_client.hget(keys.global_limits, "rate") is not None

    controls.clear_tenant_limits("t")
    controls.clear_global_limits()
    assert controls.tenant_limits("t") == Limits()
    assert controls.global_limits() == Limits()
    assert redis_client.dbsize() == 0


def test_sender_limits_are_stored_per_sender_and_clear_back_to_defaults(
    controls: Controls, redis_client: redis.Redis, keys: Keys
) -> None:
    assert controls.sender_limits("wa-1") == Limits()
    assert controls.set_sender_limits("wa-1", rate=2.5, burst=4) == Limits(rate=2.5, burst=4)
    assert controls.set_sender_limits("wa-1", rate=0) == Limits(rate=0.0, burst=4)
    stored: Any = redis_client.hgetall(keys.sender_limits("wa-1"))
    assert {k.decode(): float(v) for k, v in stored.items()} == {"rate": 0, "burst": 4}
    assert controls.sender_limits("wa-2") == Limits()  # per sender
    assert controls.tenant_limits("wa-1") == Limits()  # and apart from a tenant of that name

    controls.clear_sender_limits("wa-1")
    assert controls.sender_limits("wa-1") == Limits()
    assert redis_client.dbsize() == 0


def test_cli_sets_shows_and_clears_sender_limits(
    settings: Settings, controls: Controls, redis_client: redis.Redis
) -> None:
    done = run_cli(settings, "limits", "--sender", "wa-1", "--rate", "2", "--burst", "4")
    assert done.returncode == 0, done.stderr
    assert "sender wa-1: rate 2/s (override), burst 4 (override)" in done.stdout
    assert controls.sender_limits("wa-1") == Limits(rate=2.0, burst=4)

    done = run_cli(settings, "limits", "--sender", "wa-1", "--clear")
    assert done.returncode == 0, done.stderr
    assert "sender wa-1: rate off (default), burst 5 (default)" in done.stdout
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--tenant", "acme", "--sender", "wa-1"], "argument --sender: not allowed with"),
        (["--sender", "wa-1", "--cap", "3"], "--cap is for a --tenant, a --channel or the global"),
        (["--sender", "wa-1", "--clear", "--rate", "1"], "--clear takes no --cap, --rate"),
        (["--sender", "", "--rate", "1"], "invalid sender: must not be empty"),
        (["--sender", "wa-1", "--burst", "0"], "invalid burst: must be at least 1"),
    ],
    ids=["with --tenant", "with --cap", "--clear with a value", "empty sender", "burst 0"],
)
def test_cli_refuses_bad_sender_limits_and_writes_nothing(
    settings: Settings, redis_client: redis.Redis, args: list[str], error: str
) -> None:
    done = run_cli(settings, "limits", *args)
    assert done.returncode == 2, done.stdout
    assert error in done.stderr, done.stderr
    assert redis_client.dbsize() == 0


def test_pause_scopes_are_listed_and_resume_reports_what_it_lifted(controls: Controls) -> None:
    assert controls.paused() == []
    assert controls.pause() == "all"
    assert controls.pause(priority="low") == "priority:low"
    assert controls.pause(tenant="acme") == "tenant:acme"
    assert controls.paused() == ["all", "priority:low", "tenant:acme"]
    assert controls.resume(tenant="acme") is True
    assert controls.resume(tenant="acme") is False  # was not paused any more
    assert controls.resume(priority="low") is True
    assert controls.resume() is True
    assert controls.paused() == []
