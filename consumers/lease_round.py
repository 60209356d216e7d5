"""One flow-control round trip: which budgets it covers, its script arguments, its reply.

``plan_round`` snapshots what the worker's budgets hold and want into the arguments of
``lease_round.lua`` (and takes the waiting counts, so sends that start waiting during the
round trip wait for the next one); ``apply_reply`` writes the grants back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from relayq.consumers.budget import FRESH_FOR, Budget
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings

__all__ = ("RoundPlan", "apply_reply", "plan_round")


@dataclasses.dataclass(slots=True)
class RoundPlan:
    global_budget: Budget
    global_asked: bool
    tenants: list[tuple[Budget, bool, int, int]]
    """Each tenant budget, whether tokens were asked for it (else it keeps its own), the
    slots it needs (in flight and waiting) and the slots it may hold meanwhile."""
    senders: list[tuple[Budget, bool]]
    keys: list[str | bytes]
    args: list[str | int | float]
    sent_at: float


def _defaults(settings: Settings, worker_id: str) -> list[str | int | float]:
    """ARGV[1..9] of ``lease_round.lua``."""
    return [
        worker_id,
        round(settings.slot_ttl * 1000),
        settings.tenant_cap,
        settings.tenant_rate,
        settings.tenant_burst,
        settings.sender_rate,
        settings.sender_burst,
        settings.global_rate,
        settings.global_burst,
    ]


def _wants_tokens(budget: Budget, now: float) -> bool:
    return bool(budget.asking) or budget.running_low(now)


def plan_round(
    keys: Keys,
    settings: Settings,
    worker_id: str,
    tenants: Sequence[tuple[str, Budget]],
    senders: Sequence[tuple[str, Budget]],
    global_budget: Budget,
    now: float,
    *,
    horizon: float,
    closing: bool = False,
) -> RoundPlan:
    """Arguments for one ``lease_round.lua`` call over the given budgets, sent at ``now``.
    Tokens are asked for budgets with sends waiting or running low by ``horizon``.
    ``closing``: give every slot not in flight back and ask for nothing."""
    key_list: list[str | bytes] = [keys.global_rate, keys.global_limits]
    args = _defaults(settings, worker_id)
    global_asked = not closing and _wants_tokens(global_budget, horizon)
    prefetch = global_budget.prefetch(now) if global_asked else 0
    extra = global_budget.extra(global_budget.asking + prefetch) if global_asked else 0
    args += [prefetch, extra, settings.concurrency, len(tenants), len(senders)]
    plan = RoundPlan(global_budget, global_asked, [], [], key_list, args, now)
    numbers: list[int] = []
    for name, budget in tenants:
        key_list += budget.keys or _cache_keys(budget, _tenant_keys(keys, name))
        if closing:
            numbers += (budget.in_use, budget.in_use, 0, 0, 0, 0, 0)
            plan.tenants.append((budget, False, 0, budget.in_use))
            continue
        hold, want = budget.slot_want(now)
        asked = _wants_tokens(budget, horizon)
        tokens = budget.asking + budget.prefetch(now) if asked else 0
        numbers += (budget.in_use, hold, budget.asking, int(budget.starved), want, tokens)
        numbers.append(budget.extra(tokens))
        need = budget.in_use + budget.asking + budget.starved
        plan.tenants.append((budget, asked, need, hold))
    for name, budget in senders:
        key_list += budget.keys or _cache_keys(budget, _sender_keys(keys, name))
        asked = not closing and _wants_tokens(budget, horizon)
        tokens = budget.asking + budget.prefetch(now) if asked else 0
        numbers += (tokens, budget.extra(tokens))
        plan.senders.append((budget, asked))
    # One argument for all the numbers: packing arguments one by one is most of a round's
    # cost on the client (redis-py encodes each).
    args.append(" ".join(map(str, numbers)))
    for budget in (global_budget, *(b for _, b in tenants), *(b for _, b in senders)):
        budget.asking = 0
        budget.touched = False
    return plan


def _tenant_keys(keys: Keys, name: str) -> tuple[str, ...]:
    return (
        keys.tenant_leases(name),
        keys.tenant_lease_expiry(name),
        keys.tenant_limits(name),
        keys.tenant_pause(name),
        keys.tenant_rate(name),
    )


def _sender_keys(keys: Keys, name: str) -> tuple[str, ...]:
    return keys.sender_limits(name), keys.sender_pause(name), keys.sender_rate(name)


def _cache_keys(budget: Budget, names: tuple[str, ...]) -> tuple[bytes, ...]:
    budget.keys = tuple(name.encode() for name in names)
    return budget.keys


def apply_reply(
    plan: RoundPlan,
    reply: Sequence[int],
    now: float,
    slot_ttl: float,
    send_timeout: float,
    lead: float,
) -> float:
    """Write the round's grants into the budgets it covered; ``now`` is when it arrived,
    ``lead`` how long before tokens lapse the next round should start (see
    ``Budget.grant``). Returns when the last provider pause it found ends (0.0: none)."""
    pauses_end = 0.0
    _apply_tokens(plan.global_budget, plan.global_asked, reply[0:3], now, lead)
    _settle(plan.global_budget, plan.sent_at, send_timeout)
    at = 3
    for budget, asked, need, hold in plan.tenants:
        allowed, pause_ms = reply[at], reply[at + 4]
        budget.set_slots(allowed, plan.sent_at + slot_ttl)
        budget.decay_peak(now)
        budget.starved = False
        budget.wanting = budget.capped and need > budget.slots
        budget.recorded = max(hold, budget.slots) if budget.capped else 0
        _apply_tokens(budget, asked, reply[at + 1 : at + 4], now, lead)
        pauses_end = max(pauses_end, _apply_pause(budget, pause_ms, now))
        _settle(budget, plan.sent_at, send_timeout)
        at += 5
    for budget, asked in plan.senders:
        _apply_tokens(budget, asked, reply[at : at + 3], now, lead)
        pauses_end = max(pauses_end, _apply_pause(budget, reply[at + 3], now))
        _settle(budget, plan.sent_at, send_timeout)
        at += 4
    return pauses_end


def _settle(budget: Budget, sent_at: float, send_timeout: float) -> None:
    """The round's answer holds for ``FRESH_FOR`` from when it was asked."""
    budget.known_until = sent_at + FRESH_FOR
    budget.reopen(send_timeout)


def _apply_tokens(
    budget: Budget, asked: bool, reply: Sequence[int], now: float, lead: float
) -> None:
    """``reply``: tokens granted (-1: no rate), ms to the next token, ms they may wait."""
    tokens, wait_ms, life_ms = reply
    if tokens < 0:
        budget.set_unlimited_tokens()
        return
    if not asked and budget.limited:
        return
    budget.grant(tokens, life_ms / 1000, now, lead)
    if wait_ms > 0:
        budget.rate_open_at = now + wait_ms / 1000


def _apply_pause(budget: Budget, pause_ms: int, now: float) -> float:
    if pause_ms > 0:  # a local pause (this worker's 429) only ends by itself
        budget.paused_until = max(budget.paused_until, now + pause_ms / 1000)
        return budget.paused_until
    return 0.0
