"""Sending through the HTTP API (``relayq api``) beside the SDK, in the same run.

Four cases, interleaved, each on an empty database (``ctx.fresh()``): the SDK's ``send()``
one at a time; ``POST /v1/messages`` with one message, one request at a time; the SDK's
``send_many`` in batches of 500; ``POST /v1/messages`` with ``{"messages": [...]}`` of 500,
one request at a time. The SDK cases are the send scenario's children
(:mod:`bench.relayq_produce`); the API cases run :func:`post_single` and
:func:`post_batches` in a child process (``http.client``, one keep-alive connection, the
bodies encoded before the clock starts) against a ``relayq api`` started for the case in
its own process, with an admin key from ``relayq keys create --admin --json``. Every
message is the ~200-byte one of :func:`bench.relayq_produce.plan`. No worker: enqueue only.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import math
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from bench.context import BenchContext
from bench.processes import ProcessGroup, child_env, python_argv
from bench.relayq_env import relayq_env
from bench.relayq_produce import plan
from bench.results import MISSING, RunOutput
from bench.scenarios import Scenario, send
from bench.stats import percentiles
from relayq.producers import SendRequest
from relayq.streams.redis_server import free_port

__all__ = (
    "API_BATCH",
    "API_ONE",
    "RATIO",
    "SCENARIO",
    "SDK_MANY",
    "SDK_ONE",
    "batch_body",
    "batch_ratio",
    "missing_api_dependencies",
    "running_api_server",
    "message_body",
    "post_batches",
    "post_single",
    "single_count",
)

API_ONE = "API: POST /v1/messages, one at a time"
API_BATCH = "API: POST /v1/messages, batches of 500"
SDK_ONE = send.SEND_ONE
SDK_MANY = send.SEND_MANY
RATIO = "API batches / send_many (this run)"

_FRACTIONS = (0.5, 0.99, 0.999)
_WARMUP = 100
_NEEDED = ("litestar", "uvicorn")
_PATH = "/v1/messages"
_UP_TIMEOUT = 30.0
_encoder = msgspec.json.Encoder()


class _BatchReply(msgspec.Struct):
    accepted: int
    refused: int


_batch_reply = msgspec.json.Decoder(_BatchReply)


def single_count(*, quick: bool, smoke: bool) -> int:
    """One-message requests per case (and the SDK's ``send()`` calls beside them)."""
    if smoke:
        return 100
    return 500 if quick else 3_000


def batch_ratio(api_rate: float, sdk_rate: float) -> float:
    """The API's batch rate as a fraction of ``send_many``'s (NaN when either is not > 0)."""
    if not (api_rate > 0 and sdk_rate > 0):
        return math.nan
    return api_rate / sdk_rate


def _fields(request: SendRequest) -> dict[str, Any]:
    return {"tenant": request.tenant, "conversation": request.conversation,
            "recipient": request.recipient, "payload": request.payload}  # fmt: skip


def message_body(request: SendRequest) -> bytes:
    """``POST /v1/messages`` with one message."""
    return _encoder.encode(_fields(request))


def batch_body(requests: Sequence[SendRequest]) -> bytes:
    """``POST /v1/messages`` with a batch: ``{"messages": [...]}``."""
    return _encoder.encode({"messages": [_fields(r) for r in requests]})


# -- the client, in a child process (bench.child) ------------------------------------------


class _Client:
    """One keep-alive connection to the API, with the key in every request."""

    def __init__(self, port: int, key: str) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(self, body: bytes) -> bytes:
        """POST ``body``; its reply, or RuntimeError unless the answer is 202."""
        self._conn.request("POST", _PATH, body=body, headers=self._headers)
        response = self._conn.getresponse()
        reply = response.read()
        if response.status != 202:
            raise RuntimeError(f"POST {_PATH}: {response.status} {reply[:300]!r}")
        return reply

    def close(self) -> None:
        self._conn.close()


def post_single(port: int, key: str, n: int) -> dict[str, Any]:
    """``n`` one-message POSTs, each answered before the next: latency percentiles, rate."""
    warmup = [message_body(r) for r in plan(_WARMUP, offset=n)]
    bodies = [message_body(r) for r in plan(n)]
    client = _Client(port, key)
    try:
        for body in warmup:  # connection, the server's first sends
            client.post(body)
        clock = time.perf_counter_ns
        latencies: list[float] = []
        started = clock()
        for body in bodies:
            before = clock()
            client.post(body)
            latencies.append((clock() - before) / 1e6)
        seconds = (clock() - started) / 1e9
    finally:
        client.close()
    p50, p99, p999 = percentiles(latencies, _FRACTIONS)
    return {"n": n, "accepted": len(latencies), "rate": n / seconds,
            "p50_ms": p50, "p99_ms": p99, "p999_ms": p999}  # fmt: skip


def post_batches(port: int, key: str, n: int, batch: int = 500) -> dict[str, Any]:
    """``n`` messages in POSTs of ``batch``, each answered before the next: messages/s
    (the first batch is sent once more before, as ``send_many_rate`` does)."""
    requests = plan(n)
    bodies = [batch_body(requests[i : i + batch]) for i in range(0, n, batch)]
    client = _Client(port, key)
    try:
        client.post(bodies[0])
        accepted = 0
        started = time.perf_counter()
        for body in bodies:
            accepted += _batch_reply.decode(client.post(body)).accepted
        seconds = time.perf_counter() - started
    finally:
        client.close()
    return {"n": n, "accepted": accepted, "seconds": seconds, "rate": n / seconds}


# -- the server, in its own process ---------------------------------------------------------


def missing_api_dependencies() -> list[str]:
    return [name for name in _NEEDED if importlib.util.find_spec(name) is None]


def _admin_key(env: dict[str, str]) -> str:
    argv = python_argv("-m", "relayq.ops.cli", "keys", "create", "--admin", "--name", "bench",
                       "--json")  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"relayq keys create failed: {done.stderr.decode()[-600:]}")
    key: str = msgspec.json.decode(done.stdout)["key"]
    return key


def _wait_up(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the API answers (``/v1/health``: any status will do); else its log's tail."""
    deadline = time.monotonic() + _UP_TIMEOUT
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/v1/health")
            conn.getresponse().read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
                raise RuntimeError(f"relayq api did not come up on port {port}: {tail}") from None
            time.sleep(0.05)
        finally:
            conn.close()


@contextlib.contextmanager
def running_api_server(ctx: BenchContext, name: str) -> Iterator[tuple[int, str]]:
    """``relayq api`` on 127.0.0.1 (the bench's Redis and namespace) and an admin key for
    it: (port, key). Stopped on leaving."""
    env = child_env(relayq_env(ctx.url))
    port = free_port()
    log = ctx.step_dir(name) / "api.log"
    argv = python_argv("-m", "relayq.ops.cli", "--log-level", "warning", "api",
                       "--port", str(port))  # fmt: skip
    with ProcessGroup() as group:
        proc = group.spawn(argv, env=env, log=log)
        key = _admin_key(env)
        _wait_up(proc, port, log)
        yield port, key


# -- the cases --------------------------------------------------------------------------------


def _latency_row(out: RunOutput, row: str, result: dict[str, Any]) -> None:
    out.add(row, "msgs/s", result["rate"], "msgs/s")
    out.add(row, "p50", result["p50_ms"], "ms")
    out.add(row, "p99", result["p99_ms"], "ms")
    out.add(row, "p99.9", result["p999_ms"], "ms")


def _accepted_check(out: RunOutput, row: str, result: dict[str, Any]) -> None:
    accepted, n = result["accepted"], result["n"]
    out.check(f"{row}: every message accepted", accepted == n, f"{accepted:,} of {n:,}")


def _sdk_one(ctx: BenchContext, out: RunOutput, n: int) -> None:
    ctx.fresh()
    ctx.status(f"api: {n:,} x send() (SDK)")
    result = ctx.child("bench.relayq_produce:send_single", timeout=120, url=ctx.url, n=n)
    _latency_row(out, SDK_ONE, result)


def _api_one(ctx: BenchContext, out: RunOutput, n: int) -> None:
    ctx.fresh()
    ctx.status("api: starting relayq api")
    with running_api_server(ctx, "api-one") as (port, key):
        ctx.status(f"api: {n:,} x POST {_PATH}, one message each")
        result = ctx.child(f"{__name__}:post_single", timeout=180, port=port, key=key, n=n)
    _latency_row(out, API_ONE, result)
    _accepted_check(out, API_ONE, result)


def _sdk_many(ctx: BenchContext, out: RunOutput) -> float:
    n, batch = ctx.sizes.send_many, ctx.sizes.send_batch
    ctx.fresh()
    ctx.status(f"api: {n:,} with send_many({batch}) (SDK)")
    result = ctx.child("bench.relayq_produce:send_many_rate", timeout=120, url=ctx.url,
                       n=n, batch=batch)  # fmt: skip
    out.add(SDK_MANY, "msgs/s", result["rate"], "msgs/s")
    return float(result["rate"])


def _api_batches(ctx: BenchContext, out: RunOutput) -> float:
    n, batch = ctx.sizes.send_many, ctx.sizes.send_batch
    ctx.fresh()
    ctx.status("api: starting relayq api")
    with running_api_server(ctx, "api-batches") as (port, key):
        ctx.status(f"api: {n:,} in POST {_PATH} batches of {batch}")
        result = ctx.child(f"{__name__}:post_batches", timeout=180, port=port, key=key,
                           n=n, batch=batch)  # fmt: skip
    out.add(API_BATCH, "msgs/s", result["rate"], "msgs/s")
    _accepted_check(out, API_BATCH, result)
    return float(result["rate"])


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n = single_count(quick=ctx.quick, smoke=ctx.smoke)
    missing = missing_api_dependencies()
    _sdk_one(ctx, out, n)
    if missing:
        why = f"relayq api needs {', '.join(missing)}: pip install 'relayq[api]'"
        for row in (API_ONE, API_BATCH, RATIO):
            out.fail(row, MISSING, why)
        _sdk_many(ctx, out)
        return out
    _api_one(ctx, out, n)
    sdk_rate = _sdk_many(ctx, out)
    ratio = batch_ratio(_api_batches(ctx, out), sdk_rate)
    out.add(RATIO, "ratio", ratio, "%")
    return out


SCENARIO = Scenario(
    name="api",
    title="Sending through the HTTP API, beside the SDK",
    description=(
        "`relayq api` (Litestar on uvicorn, uvloop + httptools) in its own process; the "
        "client in another (http.client, one keep-alive connection, admin key): one message "
        "per POST, each answered before the next (latency from the client's side, with its "
        "HTTP and JSON cost), and batches of 500 per POST. Beside them, in the same run, the "
        "SDK's send() and send_many (one producer process, one connection). Enqueue only."
    ),
    run=_run,
)
