"""``python -m bench.api_frameworks``: which ASGI framework and server the HTTP API uses.

Each case is a framework (Litestar, Starlette + msgspec, FastAPI + pydantic, raw ASGI +
msgspec as the floor) under a server (uvicorn with uvloop and httptools, granian), serving
one endpoint shaped like the real one: ``POST /v1/messages`` with a ~200-byte JSON body
validated into a typed object, answered ``202`` with a JSON reply; an invalid body gets
``422`` naming the field (checked before a case is measured); and ``POST /v1/batches``
with 500 such messages (the decoding cost of a bulk send). No Redis: the framework's
and the server's cost alone.

Per case and round: the server starts in its own process on 127.0.0.1 (start-up = spawn to
first answer), ``wrk`` sends sequential requests on one keep-alive connection (p50/p99),
then keeps 16 connections busy (requests/s), then sends batches one at a time, each for
``--seconds``. Cases are interleaved and the rounds repeated (2 shared cores: a slow
moment hits every case alike); the table shows the median of the rounds and the spread
of the throughput, and the server's CPU time per request (read from /proc: steadier than
wall-clock numbers when other work shares the cores). Also: the
time to import the framework and build the app, and the installed size and distribution
count of each framework's and server's dependency closure beyond relayq's own.

Needs ``wrk`` (``apt-get install wrk``) and the candidates installed
(``pip install litestar starlette fastapi uvicorn uvloop httptools granian``; the chosen
pair is the ``api`` extra). Not part of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

__all__ = (
    "FRAMEWORKS",
    "SERVERS",
    "Accepted",
    "SendRequest",
    "main",
    "make_fastapi",
    "make_litestar",
    "make_raw",
    "make_starlette",
)

# -- the endpoint -------------------------------------------------------------------------

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class SendRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/messages`` (a subset of the real one's fields)."""

    tenant: Identifier
    conversation: Identifier
    recipient: Identifier
    payload: dict[str, Any]
    sender: Identifier | None = None
    priority: str = "normal"
    dedup_key: Identifier | None = None


class Accepted(msgspec.Struct, frozen=True):
    id: str
    status: str = "accepted"


class BatchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/batches``: many messages in one request."""

    messages: list[SendRequest]


class BatchAccepted(msgspec.Struct, frozen=True):
    batch_id: str
    ids: list[str]


BODY = (
    b'{"tenant":"acme","conversation":"order-123456","recipient":"+15551234567",'
    b'"sender":"acme-main","payload":{"text":"Your order 123456 has shipped and will '
    b'arrive on Friday."},"priority":"normal","dedup_key":"order-123456-shipped"}'
)
INVALID_BODY = BODY.replace(b'"tenant":"acme"', b'"tenant":5')
BATCH_SIZE = 500
BATCH_BODY = b'{"messages":[' + b",".join([BODY] * BATCH_SIZE) + b"]}"
_ids = itertools.count()
_decoder = msgspec.json.Decoder(SendRequest)
_batch_decoder = msgspec.json.Decoder(BatchRequest)
_encoder = msgspec.json.Encoder()


def _accept(_message: object) -> Accepted:
    return Accepted(id=f"0-{next(_ids)}")


def _problem(exc: Exception) -> bytes:
    """A 422 body naming the field: msgspec says ``... - at `$.tenant```."""
    return _encoder.encode({"error": "invalid request", "detail": str(exc)})


def _accept_batch(batch: BatchRequest) -> BatchAccepted:
    return BatchAccepted(batch_id=f"b-{next(_ids)}", ids=[_accept(m).id for m in batch.messages])


def _decode_reply(body: bytes) -> tuple[int, bytes]:
    """The status and JSON reply of the msgspec-based apps to ``POST /v1/messages``."""
    try:
        message = _decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return 422, _problem(exc)
    return 202, _encoder.encode(_accept(message))


def _decode_batch_reply(body: bytes) -> tuple[int, bytes]:
    """The same for ``POST /v1/batches``."""
    try:
        batch = _batch_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return 422, _problem(exc)
    return 202, _encoder.encode(_accept_batch(batch))


# -- the apps (built by the server process: python -m uvicorn --factory ...) ---------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


_ROUTES = {"/v1/messages": _decode_reply, "/v1/batches": _decode_batch_reply}


def make_raw() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The floor: ASGI by hand, msgspec for the body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to set up
        route = _ROUTES.get(scope["path"]) if scope["method"] == "POST" else None
        if route is None:
            status, reply = 404, b'{"error":"not found"}'
        else:
            status, reply = route(await _read_body(receive))
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": reply})

    return app


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            return b"".join(chunks)


# Starlette, FastAPI and pydantic are in no extra (`api` holds only the chosen framework):
# their ignores keep mypy quiet where they are not installed, as in CI.


def make_starlette() -> Any:
    """Starlette routing, msgspec for the body."""
    from starlette import applications, requests, responses, routing  # type: ignore[import-not-found,unused-ignore]

    def endpoint(answer: Callable[[bytes], tuple[int, bytes]]) -> Any:
        async def handle(request: requests.Request) -> responses.Response:
            status, reply = answer(await request.body())
            return responses.Response(reply, status_code=status, media_type="application/json")

        return handle

    routes = [
        routing.Route(path, endpoint(answer), methods=["POST"]) for path, answer in _ROUTES.items()
    ]
    return applications.Starlette(routes=routes)


def make_litestar() -> Any:
    """Litestar: the Struct is the handler's type; its 400 on invalid data made a 422."""
    from litestar import Litestar, Request, Response, post
    from litestar.exceptions import ValidationException

    @post("/v1/messages", status_code=202)
    async def send_message(data: SendRequest) -> Accepted:
        return _accept(data)

    @post("/v1/batches", status_code=202)
    async def send_batch(data: BatchRequest) -> BatchAccepted:
        return _accept_batch(data)

    def invalid(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
        return Response({"error": exc.detail, "fields": exc.extra}, status_code=422)

    handlers = [send_message, send_batch]
    return Litestar(handlers, exception_handlers={ValidationException: invalid})


def make_fastapi() -> Any:
    """FastAPI as written idiomatically: pydantic models in and out (422 is its default)."""
    from fastapi import FastAPI  # type: ignore[import-not-found,unused-ignore]
    from pydantic import BaseModel, ConfigDict, Field  # type: ignore[import-not-found,unused-ignore]

    class SendModel(BaseModel):  # type: ignore[misc,unused-ignore]
        model_config = ConfigDict(extra="forbid", frozen=True)
        tenant: str = Field(min_length=1, max_length=128)
        conversation: str = Field(min_length=1, max_length=128)
        recipient: str = Field(min_length=1, max_length=128)
        payload: dict[str, Any]
        sender: str | None = Field(default=None, min_length=1, max_length=128)
        priority: str = "normal"
        dedup_key: str | None = Field(default=None, min_length=1, max_length=128)

    class AcceptedModel(BaseModel):  # type: ignore[misc,unused-ignore]
        id: str
        status: str = "accepted"

    class BatchModel(BaseModel):  # type: ignore[misc,unused-ignore]
        model_config = ConfigDict(extra="forbid", frozen=True)
        messages: list[SendModel]

    class BatchAcceptedModel(BaseModel):  # type: ignore[misc,unused-ignore]
        batch_id: str
        ids: list[str]

    async def send_message(message: Any) -> Any:
        return AcceptedModel(id=_accept(message).id)

    async def send_batch(batch: Any) -> Any:
        ids = [_accept(message).id for message in batch.messages]
        return BatchAcceptedModel(batch_id=f"b-{next(_ids)}", ids=ids)

    # Real classes, not this module's postponed (string) annotations: they are local names.
    send_message.__annotations__ = {"message": SendModel, "return": AcceptedModel}
    send_batch.__annotations__ = {"batch": BatchModel, "return": BatchAcceptedModel}
    app = FastAPI()
    app.post("/v1/messages", status_code=202)(send_message)
    app.post("/v1/batches", status_code=202)(send_batch)
    return app


FRAMEWORKS = {
    "raw-asgi+msgspec": "make_raw",
    "starlette+msgspec": "make_starlette",
    "litestar": "make_litestar",
    "fastapi+pydantic": "make_fastapi",
}
_FRAMEWORK_DISTS = {
    "raw-asgi+msgspec": [],
    "starlette+msgspec": ["starlette"],
    "litestar": ["litestar"],
    "fastapi+pydantic": ["fastapi"],
}
_FRAMEWORK_MODULES = {
    "raw-asgi+msgspec": "msgspec",
    "starlette+msgspec": "starlette.applications",
    "litestar": "litestar",
    "fastapi+pydantic": "fastapi",
}


# -- the servers ------------------------------------------------------------------------


def _uvicorn(factory: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
            "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning"]  # fmt: skip


def _granian(factory: str, port: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning",
            factory]  # fmt: skip


SERVERS: dict[str, Callable[[str, int], list[str]]] = {"uvicorn": _uvicorn, "granian": _granian}
# What each server runs with here: uvicorn's `standard` extra would add reloading and
# websockets (watchfiles, websockets, python-dotenv, pyyaml), which the API does not use.
_SERVER_DISTS = {"uvicorn": ["uvicorn", "uvloop", "httptools"], "granian": ["granian"]}


# -- measuring --------------------------------------------------------------------------


class CaseRound(msgspec.Struct, frozen=True):
    """One case's numbers in one round."""

    framework: str
    server: str
    startup_s: float
    p50_us: float
    p99_us: float
    rps_c16: float
    cpu_us_c16: float
    batch_p50_ms: float
    batch_p99_ms: float
    batch_messages_s: float
    batch_cpu_ms: float
    errors: int


class WrkRun(msgspec.Struct, frozen=True):
    """One wrk run: its report, failed answers, requests done, the server's CPU seconds."""

    report: str
    errors: int
    requests: int
    server_cpu_s: float

    def cpu_per_request_us(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else float("nan")


_WRK_SCRIPT = """wrk.method = "POST"
wrk.path = "{path}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""
_LATENCY_LINE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def _request(
    port: int, body: bytes, path: str = "/v1/messages", timeout: float = 2.0
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"}
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_until_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before serving")
        try:
            _request(port, BODY, timeout=0.5)
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing served on port {port} within {timeout} s")


def _check_contract(case: str, port: int) -> None:
    """Both answers the real endpoint gives: 202 with an id, 422 naming the field."""
    status, reply = _request(port, BODY)
    if status != 202 or b'"id"' not in reply:
        raise RuntimeError(f"{case}: a valid body got {status} {reply[:200]!r}")
    status, reply = _request(port, INVALID_BODY)
    if status != 422 or b"tenant" not in reply:
        raise RuntimeError(f"{case}: an invalid body got {status} {reply[:200]!r}")
    status, reply = _request(port, BATCH_BODY, path="/v1/batches")
    if status != 202 or reply.count(b'"0-') != BATCH_SIZE:
        raise RuntimeError(f"{case}: a batch got {status} {reply[:200]!r}")


def _group_cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by the live processes of process group
    ``group``: the server and, for granian, its worker. Counted on a busy machine too,
    where wall-clock numbers swing with whatever else runs."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, script: Path, connections: int, seconds: int, group: int) -> WrkRun:
    """Run wrk against the server of process group ``group``."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
            str(script), f"http://127.0.0.1:{port}"]  # fmt: skip
    cpu_before = _group_cpu_seconds(group)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = _group_cpu_seconds(group) - cpu_before
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    for counts in re.findall(r"Socket errors: (.*)", out):
        errors += sum(int(n) for n in re.findall(r"\d+", counts))
    done = re.search(r"(\d+) requests in", out)
    return WrkRun(out, errors, int(done.group(1)) if done else 0, cpu)


def _latencies_us(report: str) -> dict[str, float]:
    return {p: float(v) * _UNITS_US[u] for p, v, u in _LATENCY_LINE.findall(report)}


def _rps(report: str) -> float:
    found = re.search(r"Requests/sec:\s+([\d.]+)", report)
    return float(found.group(1)) if found else float("nan")


def _measure_case(
    framework: str, server: str, scripts: tuple[Path, Path], seconds: int, warmup: int
) -> CaseRound:
    from bench.processes import ProcessGroup
    from relayq.streams.redis_server import free_port

    port = free_port()
    factory = f"bench.api_frameworks:{FRAMEWORKS[framework]}"
    with ProcessGroup() as group:
        started = time.perf_counter()
        proc = group.spawn(SERVERS[server](factory, port), stdout=subprocess.DEVNULL)
        _wait_until_serving(port, proc)
        startup = time.perf_counter() - started
        _check_contract(f"{framework} on {server}", port)
        one, batch = scripts
        _wrk(port, one, 16, warmup, proc.pid)
        sequential = _wrk(port, one, 1, seconds, proc.pid)
        concurrent = _wrk(port, one, 16, seconds, proc.pid)
        batches = _wrk(port, batch, 1, seconds, proc.pid)
    latency = _latencies_us(sequential.report)
    batch_latency = _latencies_us(batches.report)
    return CaseRound(
        framework=framework,
        server=server,
        startup_s=startup,
        p50_us=latency.get("50", float("nan")),
        p99_us=latency.get("99", float("nan")),
        rps_c16=_rps(concurrent.report),
        cpu_us_c16=concurrent.cpu_per_request_us(),
        batch_p50_ms=batch_latency.get("50", float("nan")) / 1000,
        batch_p99_ms=batch_latency.get("99", float("nan")) / 1000,
        batch_messages_s=_rps(batches.report) * BATCH_SIZE,
        batch_cpu_ms=batches.cpu_per_request_us() / 1000,
        errors=sequential.errors + concurrent.errors + batches.errors,
    )


def _import_seconds(framework: str) -> float:
    """Importing the framework and building the app, in a fresh interpreter (median of 3)."""
    from bench.processes import REPO_ROOT, child_env

    code = (
        "import time; t = time.perf_counter(); import bench.api_frameworks as m; "
        f"m.{FRAMEWORKS[framework]}(); print(time.perf_counter() - t)"
    )
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=REPO_ROOT, env=child_env()).stdout)
        for _ in range(3)
    ]  # fmt: skip
    return sorted(runs)[1]


# -- installed size ---------------------------------------------------------------------


def _closure(requirements: list[str]) -> set[str]:
    """The installed distributions ``requirements`` pull in (extras followed)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for wanted in [*requirement.extras, ""]:
            key = f"{name}[{wanted}]"
            if key in seen:
                continue
            seen.add(key)
            todo += [(Requirement(r), wanted) for r in dist.requires or []]
    return {key.split("[")[0] for key in seen}


def _size_mb(names: set[str]) -> float:
    from importlib import metadata

    total = 0
    for name in names:
        for file in metadata.distribution(name).files or []:
            path = Path(str(file.locate()))
            total += path.stat().st_size if path.is_file() else 0
    return total / 1e6


def _footprint(requirements: list[str]) -> tuple[int, float]:
    """Distributions and MB that ``requirements`` add beyond relayq's own dependencies."""
    extra = _closure(requirements) - _closure(["relayq"])
    return len(extra), _size_mb(extra)


# -- the run ----------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


_SPEED_HEADER = (
    "| framework | server | p50 us (seq) | p99 us (seq) | req/s c16 (min-max) "
    "| server CPU us/req (c16) "
    f"| batch of {BATCH_SIZE}: p50 ms | batch p99 ms | batch messages/s | batch CPU ms "
    "| start-up s | errors |"
)


def _speed_row(mine: list[CaseRound]) -> str:
    """One case's row: the median of its rounds (the spread of req/s in brackets)."""

    def median(field: str, form: str) -> str:
        return format(_median([getattr(r, field) for r in mine]), form)

    rps = [r.rps_c16 for r in mine]
    cells = [
        mine[0].framework,
        mine[0].server,
        median("p50_us", ".0f"),
        median("p99_us", ".0f"),
        f"{median('rps_c16', ',.0f')} ({min(rps):,.0f}-{max(rps):,.0f})",
        median("cpu_us_c16", ".0f"),
        median("batch_p50_ms", ".1f"),
        median("batch_p99_ms", ".1f"),
        median("batch_messages_s", ",.0f"),
        median("batch_cpu_ms", ".1f"),
        median("startup_s", ".2f"),
        str(sum(r.errors for r in mine)),
    ]
    return f"| {' | '.join(cells)} |"


def _print_tables(rounds: list[CaseRound], frameworks: list[str], servers: list[str]) -> None:
    print(f"\n{_SPEED_HEADER}\n|---|---|" + "---:|" * 10)
    for framework, server in itertools.product(frameworks, servers):
        mine = [r for r in rounds if (r.framework, r.server) == (framework, server)]
        if mine:
            print(_speed_row(mine))
    print("\n| framework or server | import + build app s | dists beyond relayq | MB |")
    print("|---|---:|---:|---:|")
    for framework in frameworks:
        count, size = _footprint(_FRAMEWORK_DISTS[framework])
        print(f"| {framework} | {_import_seconds(framework):.3f} | {count} | {size:.1f} |")
    for server in servers:
        count, size = _footprint(_SERVER_DISTS[server])
        print(f"| {server} | - | {count} | {size:.1f} |")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_frameworks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run (whole seconds)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds at c16 first")
    parser.add_argument("--framework", action="append", choices=list(FRAMEWORKS))
    parser.add_argument("--server", action="append", choices=list(SERVERS))
    parser.add_argument("--json", type=Path, help="also write every round here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    frameworks = args.framework or list(FRAMEWORKS)
    servers = args.server or list(SERVERS)
    cases = list(itertools.product(frameworks, servers))
    rounds: list[CaseRound] = []
    with tempfile.TemporaryDirectory() as folder:
        scripts = (Path(folder) / "one.lua", Path(folder) / "batch.lua")
        scripts[0].write_text(_WRK_SCRIPT.format(path="/v1/messages", body=BODY.decode()))
        scripts[1].write_text(_WRK_SCRIPT.format(path="/v1/batches", body=BATCH_BODY.decode()))
        for number in range(args.rounds):
            # Each round in another order: no case always runs right after the same one.
            shift = number % len(cases)
            for framework, server in cases[shift:] + cases[:shift]:
                done = _measure_case(framework, server, scripts, args.seconds, args.warmup)
                print(f"round {number + 1}: {done}", flush=True)
                rounds.append(done)
    print(f"\nbody {len(BODY)} bytes; wrk -t1, {args.seconds} s per run, {args.rounds} rounds;"
          " latency: 1 connection, sequential; throughput: 16 connections")  # fmt: skip
    _print_tables(rounds, frameworks, servers)
    if args.json:
        args.json.write_bytes(msgspec.json.encode(rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
