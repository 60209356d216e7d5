"""The pieces of the API bench scenario that need no server: the bodies it sends are what
the API takes, the batch ratio, its sizes, and the two targets it feeds."""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec
import pytest

from bench.relayq_produce import plan
from bench.results import MISSING, RunOutput, ScenarioResult
from bench.scenarios import ORDER, api, load
from bench.targets import Target, evaluate
from relayq.ops.api_models import MessageIn, SendBody

_P99 = "API send p99 (POST /v1/messages, one message)"
_BATCHES = "API batches of 500 vs send_many (same run)"


def test_a_one_message_body_is_one_message_the_api_takes() -> None:
    request = plan(1)[0]

    body = msgspec.json.decode(api.message_body(request), type=SendBody)

    single = body.single()
    assert isinstance(single, MessageIn) and body.messages is None
    assert (single.tenant, single.conversation) == (request.tenant, request.conversation)
    assert single.payload == request.payload


def test_a_batch_body_holds_each_message_in_order() -> None:
    requests = plan(500)

    body = msgspec.json.decode(api.batch_body(requests), type=SendBody)

    assert body.messages is not None and len(body.messages) == 500
    assert [m["recipient"] for m in body.messages] == [r.recipient for r in requests]


def test_the_batch_ratio_is_api_over_send_many_and_nan_without_both_rates() -> None:
    assert api.batch_ratio(15_000.0, 20_000.0) == pytest.approx(0.75)
    assert math.isnan(api.batch_ratio(15_000.0, 0.0))
    assert math.isnan(api.batch_ratio(0.0, 20_000.0))


def test_one_message_requests_per_size() -> None:
    assert api.single_count(quick=False, smoke=False) == 3_000
    assert api.single_count(quick=True, smoke=False) == 500
    assert api.single_count(quick=False, smoke=True) == 100


def _measured(
    values: Mapping[tuple[str, str], float], out: RunOutput | None = None
) -> ScenarioResult:
    out = out or RunOutput()
    for (row, column), value in values.items():
        out.add(row, column, value)
    result = ScenarioResult("api", "api", "")
    result.merge(out)
    return result


def _targets(result: ScenarioResult | None) -> dict[str, Target]:
    targets = evaluate([result] if result is not None else [])
    return {t.name: t for t in targets if t.name in (_P99, _BATCHES)}


_RUN = {
    (api.API_ONE, "p99"): 1.234,
    (api.API_BATCH, "msgs/s"): 15_000.0,
    (api.SDK_MANY, "msgs/s"): 20_000.0,
    (api.RATIO, "ratio"): 0.75,
}


def test_both_targets_met_show_the_p99_and_the_same_run_rates() -> None:
    targets = _targets(_measured(_RUN))

    assert targets[_P99].met is True and targets[_P99].measured == "1.23 ms"
    assert targets[_BATCHES].met is True
    assert targets[_BATCHES].measured == "75% (15,000 / 20,000 msgs/s)"


def test_targets_missed_at_5_ms_and_under_half_of_send_many() -> None:
    targets = _targets(_measured({**_RUN, (api.API_ONE, "p99"): 5.0, (api.RATIO, "ratio"): 0.49}))

    assert targets[_P99].met is False
    assert targets[_BATCHES].met is False


def test_targets_not_measured_without_the_scenario_or_the_api() -> None:
    absent = _targets(None)
    out = RunOutput()
    for row in (api.API_ONE, api.API_BATCH, api.RATIO):
        out.fail(row, MISSING, "relayq api needs litestar")
    missing = _targets(_measured({(api.SDK_MANY, "msgs/s"): 20_000.0}, out))

    assert absent[_P99].met is None and absent[_P99].measured == "not measured (api not run)"
    assert missing[_BATCHES].met is None
    assert "MISSING, relayq api needs litestar" in missing[_BATCHES].measured


def test_the_scenario_is_registered_after_send_and_runs_in_smoke() -> None:
    scenario = load("api")

    assert ORDER.index("api") == ORDER.index("send") + 1
    assert scenario.in_smoke and not scenario.is_peers
