"""The issue's targets, and where this run's numbers stand against each (as ratios).

A target needs a few numbers of this run; when one is absent (its scenario did not run or
broke, its row is MISSING or FAILED, it measured 0 where a ratio divides by it) the target
is "not measured" and says why, instead of dividing by zero or showing zeros.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import msgspec

from bench.raw_http import CLIENTS
from bench.results import ScenarioResult, error_summary
from bench.scenarios import (
    api,
    before_after,
    ceilings,
    dashboard,
    deliver,
    fairness,
    flow_control,
    http,
    latency,
    memory,
    outcomes,
    peers_http,
    redis_calls,
    send,
)

__all__ = ("Number", "Target", "evaluate")

_WHY_CHARS = 120
_HTTP_CONCURRENCY = 64
"""The concurrency issue 15's HTTP targets are about (the default run's largest)."""


class Target(msgspec.Struct, frozen=True):
    name: str
    goal: str
    measured: str
    met: bool | None
    """None when this run did not measure it (``measured`` then says why)."""


class Number(msgspec.Struct, frozen=True):
    """A number a target needs: its ``value``, or ``why`` this run has none."""

    value: float = math.nan
    label: str = ""
    """What it is, when the target text names it (the fastest peer's row)."""
    why: str = ""

    @property
    def ok(self) -> bool:
        return not self.why


def _find(results: Sequence[ScenarioResult], name: str) -> ScenarioResult | None:
    return next((r for r in results if r.name == name), None)


def _absent(found: ScenarioResult | None, name: str, row: str) -> str:
    """Why ``row`` of scenario ``name`` has no value."""
    if found is None:
        return f"{name} not run"
    failure = found.failure(row)
    if failure is not None:
        return f"{row}: {failure.status}, {failure.reason}"
    if found.errors:
        return f"{name} broke: {error_summary(found.errors[0])[:_WHY_CHARS]}"
    return f"no {row!r} in {name}"


def _number(
    results: Sequence[ScenarioResult], name: str, row: str, column: str, *, rate: bool = False
) -> Number:
    """The median of (row, column) in scenario ``name``; a ``rate`` must be above 0 (targets
    divide by rates)."""
    found = _find(results, name)
    value = found.median(row, column) if found else None
    if value is None or math.isnan(value):
        return Number(why=_absent(found, name, row))
    if rate and value <= 0:
        return Number(why=f"{row}: measured 0")
    return Number(value, row)


def _best(*numbers: Number) -> Number:
    """The highest of ``numbers`` that was measured, else the first one's why."""
    measured = [n for n in numbers if n.ok]
    return max(measured, key=lambda n: n.value) if measured else numbers[0]


def _fastest_peer(results: Sequence[ScenarioResult], scenario: str = "peers") -> Number:
    found = _find(results, scenario)
    row = found.extra.get("fastest") if found else None
    if not isinstance(row, str):
        why = f"{scenario} not run" if found is None else "no peer processed its messages"
        return Number(why=why)
    return _number(results, scenario, row, "msgs/s", rate=True)


def _target(
    name: str, goal: str, needs: Sequence[Number], judge: Callable[..., tuple[str, bool]]
) -> Target:
    """``judge(*values)`` gives (this run's text, met) once every number in ``needs`` was
    measured; otherwise the target is not measured, and says which number is missing why."""
    missing = [n.why for n in needs if not n.ok]
    if missing:
        return Target(name, goal, f"not measured ({'; '.join(missing)})", None)
    text, met = judge(*(n.value for n in needs))
    return Target(name, goal, text, met)


def _ratio_text(part: float, whole: Number) -> str:
    """``part`` as a share of an optional reference, for a target's text."""
    if not whole.ok:
        return f"not measured: {whole.why}"
    return f"{whole.value:,.0f}/s, {part / whole.value:.0%}"


def _delivery(results: Sequence[ScenarioResult]) -> list[Target]:
    one = _number(results, "deliver", deliver.ONE, "msgs/s", rate=True)
    consume = _number(results, "ceilings", ceilings.CONSUME, "rate", rate=True)
    peer = _fastest_peer(results)
    return [
        _target("1 worker, no-op: vs fastest peer", ">= 10x", [one, peer],
                lambda o, p: (f"{o:,.0f} / {p:,.0f} msgs/s ({peer.label}) = {o / p:.1f}x",
                              o >= 10 * p)),
        _target("1 worker, no-op: vs raw consume ceiling", ">= 50%", [one, consume],
                lambda o, c: (f"{o:,.0f} / {c:,.0f} msgs/s = {o / c:.0%}", o >= 0.5 * c)),
    ]  # fmt: skip


def _producer(results: Sequence[ScenarioResult]) -> list[Target]:
    many = _number(results, "send", send.SEND_MANY, "msgs/s")
    asyncio_ceiling = _best(
        _number(results, "ceilings", ceilings.PIPELINED_XADD, "rate", rate=True),
        _number(results, "ceilings", ceilings.PIPELINED_XADD_MATCHED, "rate", rate=True),
    )
    bench_ceiling = _number(results, "ceilings", ceilings.REDIS_BENCHMARK_PIPELINED, "rate",
                            rate=True)  # fmt: skip
    p99 = _number(results, "send", send.SEND_ONE, "p99")
    return [
        _target("send_many vs raw pipelined XADD (redis.asyncio, best batch)", ">= 50%",
                [many, asyncio_ceiling],
                lambda m, c: (f"{m:,.0f} / {c:,.0f} msgs/s = {m / c:.0%} (redis-benchmark "
                              f"-P 100: {_ratio_text(m, bench_ceiling)})", m >= 0.5 * c)),
        _target("send() p99", "< 1 ms", [p99], lambda p: (f"{p:.3f} ms", p < 1.0)),
    ]  # fmt: skip


def _others(results: Sequence[ScenarioResult]) -> list[Target]:
    p99 = _number(results, "latency", latency.row_name(2_000), "p99")
    per_msg = _number(results, "memory", memory.RELAYQ, "bytes/msg")
    cost = _number(results, "flow_control", flow_control.ON, "cost")
    return [
        _target("end-to-end p99 at 2,000 msg/s", "< 10 ms", [p99],
                lambda p: (f"{p:.1f} ms", p < 10)),
        _target("Redis memory per queued 200-byte message", "<= 400 B", [per_msg],
                lambda b: (f"{b:,.0f} B", b <= 400)),
        _target("flow control on (limits high) vs off", "< 15% slower", [cost],
                lambda c: (f"{c:.0%} slower", c < 0.15)),
    ]  # fmt: skip


def _fair_layout(results: Sequence[ScenarioResult]) -> list[Target]:
    """Issue 13: fairness at any backlog, at the cost it had before."""
    last = _number(results, "fairness", fairness.FULL, "B's last position")
    rss = _number(results, "fairness", fairness.RSS_RATIO, "ratio")
    per_msg = _number(results, "memory", memory.RELAYQ_TENANTS, "bytes/msg")
    idle = _number(results, "memory", memory.IDLE, "bytes/tenant")
    calls = _number(results, "redis_calls", redis_calls.GROWTH, "client-sent/msg")
    total = _number(results, "redis_calls", redis_calls.GROWTH, "all commands/msg")
    ratio = before_after.RATIO
    deliver_ratio = _number(
        results, "before_after", before_after.row_name(before_after.DELIVER, ratio), "ratio"
    )
    send_ratio = _number(
        results, "before_after", before_after.row_name(before_after.SEND_MANY, ratio), "ratio"
    )
    limit = memory.BEFORE_LAYOUT_BYTES * 1.1
    return [
        _target("fairness: B's 10 behind A's backlog, last at send", "<= 1,000", [last],
                lambda p: (f"{p:,.0f}", p <= fairness.WITHIN)),
        _target("fairness: worker peak RSS, full / tenth backlog", "< 1.3", [rss],
                lambda r: (f"{r:.2f}", r < fairness.RSS_LIMIT)),
        _target("memory per queued message, 1,000 tenants", f"<= {limit:.0f} B", [per_msg],
                lambda b: (f"{b:,.0f} B", b <= limit)),
        _target("memory per idle tenant after delivery", "~0 (<= 8 B)", [idle],
                lambda b: (f"{b:,.1f} B", b <= 8)),
        _target("client-sent commands per message, 1,000 / 1 tenant", "<= 1.1x", [calls],
                lambda r: (f"{r:.2f}x", r <= 1.1)),
        _target("all commands per message (scripts' too), 1,000 / 1 tenant", "<= 1.1x",
                [total], lambda r: (f"{r:.2f}x", r <= 1.1)),
        _target("no-op delivery, after / before the fair layout", ">= 85%", [deliver_ratio],
                lambda r: (f"{r:.0%}", r >= 0.85)),
        _target("send_many, after / before the fair layout", ">= 85%", [send_ratio],
                lambda r: (f"{r:.0%}", r >= 0.85)),
    ]  # fmt: skip


def _outcome_work(results: Sequence[ScenarioResult]) -> list[Target]:
    """Issue 14: counters, records and events on the hot path, all on, against before."""
    total = _number(results, "outcomes", outcomes.TOTAL_SHARE, "cost")
    parts = [
        (name, _number(results, "outcomes", row, "cost"))
        for name, row in (("counters", outcomes.COUNTERS_SHARE),
                          ("records", outcomes.RECORDS_SHARE),
                          ("events", outcomes.EVENTS_SHARE))
    ]  # fmt: skip
    shares = ", ".join(f"{name} {n.value:.0%}" for name, n in parts if n.ok)
    return [
        _target("issue 14's outcome work, all on, vs before (no-op delivery)", "cost < 15%",
                [total], lambda t: (f"{t:.0%} slower ({shares})", t < 0.15)),
    ]  # fmt: skip


def _api_send(results: Sequence[ScenarioResult]) -> list[Target]:
    """Issue 14: sending through the HTTP API, against the SDK of the same run."""
    p99 = _number(results, "api", api.API_ONE, "p99")
    ratio = _number(results, "api", api.RATIO, "ratio")
    batches = _number(results, "api", api.API_BATCH, "msgs/s", rate=True)
    many = _number(results, "api", api.SDK_MANY, "msgs/s", rate=True)
    return [
        _target("API send p99 (POST /v1/messages, one message)", "< 5 ms", [p99],
                lambda p: (f"{p:.2f} ms", p < 5.0)),
        _target("API batches of 500 vs send_many (same run)", ">= 50%", [ratio, batches, many],
                lambda r, b, m: (f"{r:.0%} ({b:,.0f} / {m:,.0f} msgs/s)", r >= 0.5)),
    ]  # fmt: skip


def _dashboard(results: Sequence[ScenarioResult]) -> list[Target]:
    """Issue 16: the slowest dashboard page's p95 on the seeded namespace."""
    worst = _number(results, "dashboard", dashboard.WORST, "p95")
    return [
        _target("dashboard page load p95 (slowest page)", "< 300 ms", [worst],
                lambda w: (f"{w:.0f} ms", w < 300.0)),
    ]  # fmt: skip


def _http_delivery(results: Sequence[ScenarioResult]) -> list[Target]:
    """Issue 15: relayq's HTTP rate at concurrency 64 against the raw clients (same run)
    and against the fastest peer on the same HTTP job."""
    top = _HTTP_CONCURRENCY
    relayq = _number(results, "http", http.row_name(top), "msgs/s", rate=True)
    raws = [_number(results, "http", http.raw_row(c, top), "msgs/s", rate=True) for c in CLIENTS]
    raw, peer = _best(*raws), _fastest_peer(results, "peers_http")
    ratio, factor = http.TARGET_RATIO, peers_http.TARGET_FACTOR

    def versus(other: Number, r: float, o: float) -> str:
        return f"{r:,.0f} / {o:,.0f} msgs/s ({other.label}) = {r / o:.2f}x"

    return [
        _target(f"HTTP, 5 ms provider, c={top}: vs best raw client", f">= {ratio:.0%}",
                [relayq, raw], lambda r, b: (versus(raw, r, b), r >= ratio * b)),
        _target(f"HTTP, 5 ms provider, c={top}: vs fastest peer", f">= {factor:g}x",
                [relayq, peer], lambda r, p: (versus(peer, r, p), r >= factor * p)),
    ]  # fmt: skip


def evaluate(results: Sequence[ScenarioResult]) -> list[Target]:
    """Every target; ``met`` is None for those this run did not measure (the text says why)."""
    return [
        *_delivery(results),
        *_producer(results),
        *_others(results),
        *_fair_layout(results),
        *_outcome_work(results),
        *_api_send(results),
        *_http_delivery(results),
        *_dashboard(results),
    ]
