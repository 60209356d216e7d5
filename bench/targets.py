"""The issue's targets, and where this run's numbers stand against each (as ratios)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from bench.results import ScenarioResult
from bench.scenarios import ceilings, deliver, flow_control, latency, memory, send

__all__ = ("Target", "evaluate")


class Target(msgspec.Struct, frozen=True):
    name: str
    goal: str
    measured: str
    met: bool | None
    """None when this run did not measure it."""


def _find(results: Sequence[ScenarioResult], name: str) -> ScenarioResult | None:
    return next((r for r in results if r.name == name), None)


def _median(results: Sequence[ScenarioResult], name: str, row: str, column: str) -> float:
    found = _find(results, name)
    value = found.median(row, column) if found else None
    return math.nan if value is None else value


def _fastest_peer(results: Sequence[ScenarioResult]) -> tuple[str, float]:
    found = _find(results, "peers")
    if found is None:
        return "", math.nan
    row = found.extra.get("fastest")
    if not isinstance(row, str):
        return "", math.nan
    return row, found.median(row, "msgs/s") or math.nan


def _met(ok: bool, *values: float) -> bool | None:
    return None if any(math.isnan(v) for v in values) else ok


def _target(name: str, goal: str, measured: str, met: bool | None) -> Target:
    return Target(name, goal, measured if met is not None else "not measured in this run", met)


def _delivery(results: Sequence[ScenarioResult]) -> list[Target]:
    one = _median(results, "deliver", deliver.ONE, "msgs/s")
    consume = _median(results, "ceilings", ceilings.CONSUME, "rate")
    peer_row, peer = _fastest_peer(results)
    return [
        _target("1 worker, no-op: vs fastest peer", ">= 10x",
               f"{one:,.0f} / {peer:,.0f} msgs/s ({peer_row}) = {one / peer:.1f}x",
               _met(one >= 10 * peer, one, peer)),
        _target("1 worker, no-op: vs raw consume ceiling", ">= 50%",
               f"{one:,.0f} / {consume:,.0f} msgs/s = {one / consume:.0%}",
               _met(one >= 0.5 * consume, one, consume)),
    ]  # fmt: skip


def _producer(results: Sequence[ScenarioResult]) -> list[Target]:
    many = _median(results, "send", send.SEND_MANY, "msgs/s")
    asyncio_ceiling = max(
        _median(results, "ceilings", ceilings.PIPELINED_XADD, "rate"),
        _median(results, "ceilings", ceilings.PIPELINED_XADD_MATCHED, "rate"),
    )
    bench_ceiling = _median(results, "ceilings", ceilings.REDIS_BENCHMARK_PIPELINED, "rate")
    p99 = _median(results, "send", send.SEND_ONE, "p99")
    return [
        _target("send_many vs raw pipelined XADD (redis.asyncio, best batch)", ">= 50%",
               f"{many:,.0f} / {asyncio_ceiling:,.0f} msgs/s = {many / asyncio_ceiling:.0%} "
               f"(redis-benchmark -P 100: {bench_ceiling:,.0f}/s, {many / bench_ceiling:.0%})",
               _met(many >= 0.5 * asyncio_ceiling, many, asyncio_ceiling)),
        _target("send() p99", "< 1 ms", f"{p99:.3f} ms", _met(p99 < 1.0, p99)),
    ]  # fmt: skip


def _others(results: Sequence[ScenarioResult]) -> list[Target]:
    p99 = _median(results, "latency", latency.row_name(2_000), "p99")
    per_msg = _median(results, "memory", memory.RELAYQ, "bytes/msg")
    cost = _median(results, "flow_control", flow_control.ON, "cost")
    return [
        _target("end-to-end p99 at 2,000 msg/s", "< 10 ms", f"{p99:.1f} ms",
               _met(p99 < 10, p99)),
        _target("Redis memory per queued 200-byte message", "<= 400 B",
               f"{per_msg:,.0f} B", _met(per_msg <= 400, per_msg)),
        _target("flow control on (limits high) vs off", "< 15% slower",
               f"{cost:.0%} slower", _met(cost < 0.15, cost)),
    ]  # fmt: skip


def evaluate(results: Sequence[ScenarioResult]) -> list[Target]:
    """Every target; ``met`` is None for those this run did not measure."""
    return [*_delivery(results), *_producer(results), *_others(results)]
