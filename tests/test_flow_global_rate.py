"""Global rate limit, shared by every worker process (GCRA in Redis): with the limit at
200/s and a burst allowance of 10, no 1-second window at the provider holds more than
200 + 10 deliveries (plus what transit time adds, see TRANSIT), and 1,000 messages take
as long as the limit says, not much longer."""

from __future__ import annotations

import bisect

from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import (
    WorkerPool,
    all_ids,
    check_order,
    conversation_requests,
    delivered_ids,
    send_all,
    wait_until,
)

RATE = 200.0
BURST = 10
"""The documented burst allowance (Settings.global_burst, default 10): GCRA lets up to
BURST sends go at once after an idle spell, then one every 1/RATE s, so any window of t
seconds holds at most RATE * t + BURST admissions."""
TRANSIT = 0.4
"""What the provider's clock adds. The limiter decides when a send may start; the
provider stamps when it handles the request. On a loaded 2-core machine (two workers,
Redis and the provider sharing it) sends reach the provider up to a few hundred ms late,
and unevenly: timed at the deliverer, send starts never exceeded 209 in a second while
the provider counted up to 256 (start-to-provider lag p99 0.5 s). So a one-second window
of arrivals may hold up to RATE * TRANSIT (80) more than one of send starts. A limit per
process (2 x RATE here) or per fixed one-second window (up to 2 x RATE across a window
edge) is still far above."""
MESSAGES = 1000
WORKERS = 2


def busiest_second(times_ns: list[int]) -> int:
    """Most deliveries in any sliding window of one second (times sorted)."""
    return max(
        bisect.bisect_left(times_ns, start + 1_000_000_000) - i for i, start in enumerate(times_ns)
    )


def test_global_rate_holds_across_workers(
    settings: Settings, make_provider: ProviderFactory, workers: WorkerPool
) -> None:
    # Many tenants, no tenant cap: only the global limit holds the workers back.
    # max_attempts: a send timing out on a starved machine is retried, not dead-lettered.
    settings = settings.replace(tenant_cap=0, global_rate=RATE, global_burst=BURST, max_attempts=30)
    provider = make_provider()
    sent = send_all(settings, conversation_requests(200, MESSAGES // 200, tenants=20))
    expected = all_ids(sent)
    assert len(expected) == MESSAGES
    for _ in range(WORKERS):
        workers.start(provider.url, settings=settings)

    wait_until(
        lambda: delivered_ids(provider) >= expected,
        timeout=30,
        message="all 1,000 messages delivered",
        interval=0.2,
    )
    deliveries = provider.deliveries()
    result = check_order(sent, deliveries)
    assert result.delivered == expected and result.unexpected == []
    assert result.violations == [], result.violations[:10]

    times = sorted(d.received_ns for d in deliveries)
    peak = busiest_second(times)
    span = (times[-1] - times[0]) / 1e9
    least = (len(times) - BURST) / RATE  # GCRA: n sends need (n - burst) / rate seconds
    print(f"busiest second: {peak} deliveries; {len(times)} over {span:.2f}s (least {least}s)")
    assert peak <= RATE * (1 + TRANSIT) + BURST
    # Consistent with the limit: not faster (but for how late the first arrivals were)...
    assert span >= least - TRANSIT
    # ...and the workers kept up with it (no stalls that would halve the throughput).
    assert span < 2 * least
