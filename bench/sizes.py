"""How big each scenario is in the default run, ``--quick`` and ``--smoke``."""

from __future__ import annotations

import msgspec

__all__ = ("Sizes", "sizes_for")


class Sizes(msgspec.Struct, frozen=True, kw_only=True):
    repeats: int
    ceiling_plain: int
    ceiling_pipelined: int
    ceiling_loop: int
    send_single: int
    send_many: int
    send_batch: int = 500
    backlog: int
    """The deliver, flow-control, profile and memory backlog (spec: 50,000)."""
    http: int
    http_concurrency: tuple[int, ...]
    http_seconds: float
    """Time bound of one HTTP run (the rate is over what it delivered by then)."""
    latency_rates: tuple[int, ...]
    latency_seconds: float
    seed_scale: int
    """Seeds' load scenarios multiplied by this (spec: 100)."""
    sustained_seconds: float
    peers_n: int
    peer_repeats: int
    """Extra runs of the fastest peer, so the comparison has a median too."""
    peers_http: int
    """Messages each peer's HTTP job POSTs to the local provider (as many as relayq's)."""
    fair_backlog: int
    """Tenant A's backlog in the fairness scenario (issue 13: 1,000,000)."""
    fair_watch: int
    """Deliveries after which the fairness scenario stops its worker."""
    spread_tenants: int
    """Tenants of mixed backlog sizes in the fairness-spread scenario (issue 13: 1,000)."""
    spread_seconds: float
    """Time window over which fairness-spread counts each tenant's deliveries."""
    calls_backlog: int
    """Messages delivered per tenant count in the Redis-calls scenario."""
    pairs: int
    """Interleaved before/after pairs of the before-after scenario."""


_DEFAULT = Sizes(
    repeats=3,
    ceiling_plain=100_000,
    ceiling_pipelined=500_000,
    ceiling_loop=100_000,
    send_single=5_000,
    send_many=50_000,
    backlog=50_000,
    http=3_000,
    http_concurrency=(4, 16, 64),
    http_seconds=10.0,
    latency_rates=(500, 2_000, 5_000),
    latency_seconds=5.0,
    seed_scale=100,
    sustained_seconds=5.0,
    peers_n=5_000,
    peer_repeats=2,
    peers_http=3_000,
    fair_backlog=1_000_000,
    fair_watch=10_000,
    spread_tenants=1_000,
    spread_seconds=10.0,
    calls_backlog=30_000,
    pairs=3,
)

_QUICK = Sizes(
    repeats=1,
    ceiling_plain=20_000,
    ceiling_pipelined=100_000,
    ceiling_loop=20_000,
    send_single=1_000,
    send_many=10_000,
    backlog=10_000,
    http=1_000,
    http_concurrency=(16,),
    http_seconds=3.0,
    latency_rates=(500, 2_000, 5_000),
    latency_seconds=1.0,
    seed_scale=10,
    sustained_seconds=1.0,
    peers_n=600,
    peer_repeats=0,
    peers_http=1_000,
    fair_backlog=100_000,
    fair_watch=5_000,
    spread_tenants=1_000,
    spread_seconds=3.0,
    calls_backlog=10_000,
    pairs=1,
)

_SMOKE = Sizes(
    repeats=1,
    ceiling_plain=2_000,
    ceiling_pipelined=10_000,
    ceiling_loop=2_000,
    send_single=200,
    send_many=1_000,
    backlog=1_000,
    http=200,
    http_concurrency=(16,),
    http_seconds=3.0,
    latency_rates=(500,),
    latency_seconds=0.5,
    seed_scale=1,
    sustained_seconds=1.0,
    peers_n=200,
    peer_repeats=0,
    peers_http=200,
    fair_backlog=5_000,
    fair_watch=2_000,
    spread_tenants=100,
    spread_seconds=1.0,
    calls_backlog=1_000,
    pairs=1,
)


def sizes_for(*, quick: bool, smoke: bool) -> Sizes:
    if smoke:
        return _SMOKE
    return _QUICK if quick else _DEFAULT
