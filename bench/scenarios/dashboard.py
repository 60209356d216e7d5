"""The dashboard's page loads on a large namespace (issue 16: p95 under 300 ms).

On an empty database (``ctx.fresh()``): a few thousand waiting messages sent by the SDK
(``send_many``, which also records the namespace's shape), then, written straight into
Redis in relayq's own layout (pipelines of a few thousand commands, in a child process),
1,000,000 delivered outcome records (``{ns:P}:outcomes`` + the ``:outcomes:delivered``
index + their members in the ``:outcomes:lookup`` search index) and 100,000 dead letters
(``{ns:P}:dlq`` entries as ``dead_letter_11.lua`` writes them, their records + the
``:outcomes:dead_lettered`` index), over every partition and
1,000 tenants, with the durable counters (``{ns:P}:counts``) that match (quick: 20,000 and
2,000). Then ``relayq api`` in its own process, an admin key, a sign-in (``POST /login``:
the session cookie), and full GETs of each page (client-side time to the last byte, one
keep-alive ``http.client`` connection, pages taken in turn), p50 and p95 per page.
"""

from __future__ import annotations

import dataclasses
import http.client
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import redis

from bench.context import BenchContext
from bench.relayq_env import relayq_settings
from bench.results import MISSING, RunOutput
from bench.scenarios import Scenario, api
from bench.stats import percentiles
from relayq.ops.message_search import lookup_members
from relayq.streams.codec import encode_message
from relayq.streams.dead_letter_index import COMPLETE, letter_members
from relayq.streams.keys import Keys
from relayq.streams.message import Message
from relayq.streams.message_id import crockford_base32
from relayq.streams.outcome import (
    OutcomeState,
    counter_field,
    delivered_record,
    message_record,
)

__all__ = (
    "PAGES",
    "SCENARIO",
    "WORST",
    "SeedSizes",
    "load_pages",
    "page_row",
    "seed",
    "seed_sizes",
)

WORST = "worst page"
"""The row holding the highest p95 (and its p50) of every page: the target reads it."""

TENANT_PAGE = "/dead-letters?tenant=T"
DETAIL_PAGE = "/messages/ID"
RECIPIENT_PAGE = "/messages?recipient=R"
PAGES: tuple[str, ...] = (
    "/",
    "/tenants?sort=dead_lettered",
    "/messages?state=delivered",
    "/messages?state=dead_lettered",
    "/messages?state=waiting",
    "/dead-letters",
    TENANT_PAGE,
    "/dead-letters?kind=stalled",
    DETAIL_PAGE,
    RECIPIENT_PAGE,
    "/pending",
    "/controls",
)
"""The pages timed; the placeholders get a seeded tenant, message id and recipient."""

_TENANTS = 1_000
_CONVERSATIONS = 20_000
"""Conversation ``c`` belongs to tenant ``c % _TENANTS``."""
_CHUNK = 20_000
"""Messages generated and written per pipeline (a few thousand commands at most)."""
_SPAN_MS = 3_000_000
"""Finished times spread over the last 50 minutes (inside the default 1 h retention)."""
_WARMUP = 2
_FRACTIONS = (0.5, 0.95)
_LEVELS = ("high", "normal", "normal", "low")
_KINDS = ("permanent", "exhausted")
_WORKER = "bench-worker-1"
_PAYLOAD = b'{"text":"hello from the dashboard bench","n":%d}'


@dataclasses.dataclass(frozen=True)
class SeedSizes:
    delivered: int
    dead: int
    waiting: int
    loads: int


def seed_sizes(*, quick: bool, smoke: bool) -> SeedSizes:
    """What is seeded and how many timed loads per page (the issue's sizes by default)."""
    if smoke:
        return SeedSizes(delivered=5_000, dead=500, waiting=500, loads=3)
    if quick:
        return SeedSizes(delivered=20_000, dead=2_000, waiting=500, loads=5)
    return SeedSizes(delivered=1_000_000, dead=100_000, waiting=2_000, loads=30)


def page_row(page: str) -> str:
    return f"GET {page}"


# -- seeding, in a child process (bench.child) ----------------------------------------------


class _Seeder:
    """Messages of the seeded namespace, by index: tenant, conversation, partition, time."""

    def __init__(self, keys: Keys, now_ms: int) -> None:
        self.keys = keys
        self.now_ms = now_ms
        self.counts: Counter[tuple[int, str]] = Counter()
        self._partitions = [
            keys.partition_of(self.tenant_of(c), self._conversation(c))
            for c in range(_CONVERSATIONS)
        ]

    @staticmethod
    def tenant_of(c: int) -> str:
        return f"tenant-{c % _TENANTS:04d}"

    @staticmethod
    def _conversation(c: int) -> str:
        return f"conv-{c:06d}"

    def at_ms(self, i: int, n: int) -> int:
        """The i-th of n finished times, oldest first, over the last ``_SPAN_MS``."""
        return self.now_ms - _SPAN_MS + (i * _SPAN_MS) // max(n, 1)

    def message(self, i: int, at_ms: int) -> tuple[Message, int]:
        """Message ``i`` (finished at ``at_ms``) and its partition."""
        c = i % _CONVERSATIONS
        created_ms = at_ms - 50
        message_id = crockford_base32(((created_ms << 80) | i).to_bytes(20, "big"))[6:]
        message = Message(
            message_id.decode(), self.tenant_of(c), self._conversation(c), _recipient(c),
            _LEVELS[(i // _TENANTS) % len(_LEVELS)], _PAYLOAD % i, created_ms,
        )  # fmt: skip
        return message, self._partitions[c]

    def count(self, state: OutcomeState, partition: int, message: Message) -> None:
        self.counts[partition, counter_field(state, message.priority, message.tenant)] += 1


def _recipient(c: int) -> str:
    """Conversation ``c``'s recipient (its 50 delivered records: 1,000,000 / 20,000)."""
    return f"+1555{c:07d}"


def _chunks(n: int) -> Iterator[range]:
    for start in range(0, n, _CHUNK):
        yield range(start, min(start + _CHUNK, n))


def _write_delivered(client: redis.Redis, seeder: _Seeder, indices: range, n: int) -> str:
    records: defaultdict[int, dict[str, bytes]] = defaultdict(dict)
    index: defaultdict[int, dict[str, int]] = defaultdict(dict)
    lookup: defaultdict[int, dict[bytes, int]] = defaultdict(dict)
    message_id = ""
    for i in indices:
        at = seeder.at_ms(i, n)
        message, p = seeder.message(i, at)
        entry_id = f"{at - 20}-{i}".encode()
        records[p][message.id] = delivered_record(message, p, entry_id, _WORKER, 1, f"prov-{i}", at)
        index[p][message.id] = at
        for member in lookup_members(message.id, at, message.conversation, message.recipient):
            lookup[p][member] = 0
        seeder.count(OutcomeState.DELIVERED, p, message)
        message_id = message.id
    pipe = client.pipeline(transaction=False)
    for p, mapping in records.items():
        pipe.hset(seeder.keys.outcomes(p), mapping=mapping)  # type: ignore[arg-type]
        pipe.zadd(seeder.keys.outcome_index(p, OutcomeState.DELIVERED.value), index[p])
        pipe.zadd(seeder.keys.outcome_lookup(p), lookup[p])
    pipe.execute()
    return message_id


def _dead_letter(
    seeder: _Seeder, i: int, n: int, offset: int
) -> tuple[int, str, dict[Any, Any], bytes, int, str]:
    """(partition, DLQ entry id, DLQ fields, record, time, message id) of dead letter i."""
    at = seeder.at_ms(i, n)
    message, p = seeder.message(offset + i, at)
    entry_id, dlq_id = f"{at - 20}-{i}", f"{at}-{i}"
    kind = _KINDS[i % len(_KINDS)]
    error = f"provider said 400: recipient {message.recipient} is not reachable ({kind})"
    fields = {
        "error": error, "kind": kind, "attempts": "5",
        "origin_stream": seeder.keys.stream(p, message.priority), "origin_id": entry_id,
        "failed_ms": str(at), "consumer": _WORKER, "entry:m": encode_message(message),
    }  # fmt: skip
    record = message_record(
        message, OutcomeState.DEAD_LETTERED, partition=p, entry_id=entry_id.encode(),
        worker=_WORKER, attempts=5, at_ms=at, error=error, kind=kind, dlq_id=dlq_id,
    )  # fmt: skip
    seeder.count(OutcomeState.DEAD_LETTERED, p, message)
    return p, dlq_id, fields, record, at, message.id


def _write_dead(client: redis.Redis, seeder: _Seeder, indices: range, n: int, offset: int) -> None:
    records: defaultdict[int, dict[str, bytes]] = defaultdict(dict)
    index: defaultdict[int, dict[str, int]] = defaultdict(dict)
    indexed: defaultdict[int, dict[str, int]] = defaultdict(dict)
    pipe = client.pipeline(transaction=False)
    for i in indices:
        p, dlq_id, fields, record, at, message_id = _dead_letter(seeder, i, n, offset)
        pipe.xadd(seeder.keys.dead_letter(p), fields, id=dlq_id)
        records[p][message_id] = record
        index[p][message_id] = at
        tenant = seeder.tenant_of((offset + i) % _CONVERSATIONS)
        indexed[p].update(dict.fromkeys(letter_members(tenant, fields["kind"], dlq_id), 0))
    for p, members in indexed.items():
        pipe.zadd(seeder.keys.dead_letter_index(p), {**members, COMPLETE: 0})
    for p, mapping in records.items():
        pipe.hset(seeder.keys.outcomes(p), mapping=mapping)  # type: ignore[arg-type]
        pipe.zadd(seeder.keys.outcome_index(p, OutcomeState.DEAD_LETTERED.value), index[p])
    pipe.execute()


def _write_counts(client: redis.Redis, seeder: _Seeder) -> None:
    """Add the seeded totals to the durable counters (the SDK's waiting messages have none)."""
    pipe = client.pipeline(transaction=False)
    for (p, field), n in seeder.counts.items():
        pipe.hincrby(seeder.keys.counts(p), field, n)
    pipe.execute()


def seed(url: str, delivered: int, dead: int) -> dict[str, Any]:
    """Write ``delivered`` delivered and ``dead`` dead-lettered messages into the bench's
    namespace: seconds taken, Redis memory after, a delivered message id and a tenant."""
    keys = Keys.from_settings(relayq_settings(url))
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    seeder = _Seeder(keys, time.time_ns() // 1_000_000)
    sample = ""
    try:
        for indices in _chunks(delivered):
            sample = _write_delivered(client, seeder, indices, delivered) or sample
        for indices in _chunks(dead):
            _write_dead(client, seeder, indices, dead, delivered)
        _write_counts(client, seeder)
        seconds = time.perf_counter() - started
        memory = int(client.info("memory")["used_memory"])
    finally:
        client.close()
    return {"seconds": seconds, "memory_mb": memory / 2**20, "message_id": sample,
            "tenant": seeder.tenant_of(_TENANTS // 2)}  # fmt: skip


# -- the client, in a child process (bench.child) -------------------------------------------


class _Session:
    """One keep-alive connection, signed in to the dashboard (its session cookie)."""

    def __init__(self, port: int, key: str) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._cookie = self._sign_in(key)

    def _sign_in(self, key: str) -> str:
        body = urlencode({"key": key, "next": "/"})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        self._conn.request("POST", "/login", body=body, headers=headers)
        response = self._conn.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie", "")
        if response.status != 303 or not cookie:
            raise RuntimeError(f"POST /login: {response.status}, no session cookie")
        return cookie.split(";", 1)[0]

    def get(self, path: str) -> int:
        """GET ``path`` to its last byte: its size, or RuntimeError unless the answer is 200."""
        self._conn.request("GET", path, headers={"Cookie": self._cookie})
        response = self._conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        return len(body)

    def close(self) -> None:
        self._conn.close()


def load_pages(port: int, key: str, paths: dict[str, str], loads: int) -> dict[str, Any]:
    """Each page of ``paths`` (row name -> path) ``loads`` times, pages in turn, after
    ``_WARMUP`` untimed loads of each: per row, the milliseconds and the page's size."""
    session = _Session(port, key)
    times: dict[str, list[float]] = {name: [] for name in paths}
    sizes: dict[str, int] = {}
    clock = time.perf_counter_ns
    try:
        for _ in range(_WARMUP):
            for name, path in paths.items():
                sizes[name] = session.get(path)
        for _ in range(loads):
            for name, path in paths.items():
                before = clock()
                session.get(path)
                times[name].append((clock() - before) / 1e6)
    finally:
        session.close()
    return {"times": times, "sizes": sizes}


# -- the run ----------------------------------------------------------------------------------


def _paths(tenant: str, message_id: str) -> dict[str, str]:
    real = {TENANT_PAGE: f"/dead-letters?tenant={tenant}", DETAIL_PAGE: f"/messages/{message_id}",
            RECIPIENT_PAGE: f"/messages?{urlencode({'recipient': _recipient(7)})}"}  # fmt: skip
    return {page_row(page): real.get(page, page) for page in PAGES}


def _seed(ctx: BenchContext, out: RunOutput, sizes: SeedSizes) -> dict[str, Any]:
    ctx.fresh()
    ctx.status(f"dashboard: {sizes.waiting:,} waiting messages (send_many)")
    ctx.child("bench.relayq_produce:send_many_rate", timeout=120, url=ctx.url, n=sizes.waiting)
    ctx.status(f"dashboard: seeding {sizes.delivered:,} delivered, {sizes.dead:,} dead letters")
    seeded: dict[str, Any] = ctx.child(f"{__name__}:seed", timeout=600, url=ctx.url,
                                       delivered=sizes.delivered, dead=sizes.dead)  # fmt: skip
    label = f"seed {sizes.delivered:,} delivered + {sizes.dead:,} dead letters"
    out.add(label, "seconds", seeded["seconds"], "s")
    out.add(label, "Redis MB", seeded["memory_mb"], "MB")
    return seeded


def _record(out: RunOutput, result: dict[str, Any]) -> None:
    worst = (0.0, 0.0)
    for row, times in result["times"].items():
        p50, p95 = percentiles(times, _FRACTIONS)
        out.add(row, "p50", p50, "ms")
        out.add(row, "p95", p95, "ms")
        out.add(row, "KB", result["sizes"][row] / 1024, "KB")
        worst = max(worst, (p95, p50))
    out.add(WORST, "p50", worst[1], "ms")
    out.add(WORST, "p95", worst[0], "ms")


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    sizes = seed_sizes(quick=ctx.quick, smoke=ctx.smoke)
    missing = api.missing_api_dependencies()
    if missing:
        why = f"relayq api needs {', '.join(missing)}: pip install 'relayq[api]'"
        for row in (*(page_row(p) for p in PAGES), WORST):
            out.fail(row, MISSING, why)
        return out
    seeded = _seed(ctx, out, sizes)
    ctx.status("dashboard: starting relayq api")
    with api.running_api_server(ctx, "dashboard") as (port, key):
        ctx.status(f"dashboard: {len(PAGES)} pages x {sizes.loads} loads")
        result = ctx.child(f"{__name__}:load_pages", timeout=900, port=port, key=key,
                           paths=_paths(seeded["tenant"], seeded["message_id"]),
                           loads=sizes.loads)  # fmt: skip
    _record(out, result)
    return out


SCENARIO = Scenario(
    name="dashboard",
    title="Dashboard page loads on 1,000,000 delivered records and 100,000 dead letters",
    description=(
        "A namespace seeded straight into Redis in relayq's layout: 1,000,000 delivered "
        "outcome records and 100,000 dead letters (DLQ entries, records, indexes, counters) "
        f"over every partition and {_TENANTS:,} tenants, plus a few thousand waiting messages "
        "sent by the SDK (quick: 20,000 and 2,000). `relayq api` in its own process; the "
        "client in another, signed in with an admin key (POST /login, session cookie), one "
        "keep-alive http.client connection, full GETs of each page in turn (time to the "
        "last byte, from the client's side), after two untimed loads of each."
    ),
    run=_run,
    repeats=lambda _sizes: 1,
    in_smoke=False,
)
