"""The pieces of issue 13's bench scenarios that need no Redis: the fairness statistics, the
spread scenario's backlog sizes, the targets they feed, and the 'before' tree's children
importing the relayq of the commit before the fair layout."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bench.baseline_tree import baseline_env, extract_baseline
from bench.fairness_stats import jain_index, max_min_share, positions_of
from bench.processes import child_env
from bench.results import RunOutput, ScenarioResult
from bench.scenarios import before_after, fairness, redis_calls
from bench.scenarios.fairness_spread import backlogs
from bench.targets import Target, evaluate


def test_jain_index_is_one_when_equal_and_one_over_n_when_one_gets_everything() -> None:
    assert jain_index([3.0, 3.0, 3.0]) == 1.0
    assert jain_index([6.0, 0.0, 0.0]) == 1 / 3
    assert math.isnan(jain_index([]))
    assert max_min_share([4.0, 2.0]) == 2.0
    assert max_min_share([4.0, 0.0]) == math.inf
    assert positions_of(["a", "b", "a", "b"], "b") == [2, 4]


def test_the_spread_is_a_few_big_backlogs_and_many_small_ones() -> None:
    plans = backlogs(1_000)
    sizes = [count for _, count, _ in plans]
    assert len(plans) == 1_000 and sizes[0] == 5_000
    assert sum(1 for s in sizes if s >= 1_000) == 5
    assert sum(1 for s in sizes if 10 <= s <= 50) > 800
    assert all(conversations >= 1 for _, _, conversations in plans)


def _measured(name: str, values: Mapping[tuple[str, str], float]) -> ScenarioResult:
    out = RunOutput()
    for (row, column), value in values.items():
        out.add(row, column, value)
    result = ScenarioResult(name, name, "")
    result.merge(out)
    return result


def _target(targets: list[Target], prefix: str) -> Target:
    return next(t for t in targets if t.name.startswith(prefix))


def test_fair_layout_targets_judge_what_was_measured_and_say_why_not() -> None:
    ratio = before_after.RATIO
    results = [
        _measured("fairness", {(fairness.FULL, "B's last position"): 391.0}),
        _measured("redis_calls", {(redis_calls.GROWTH, "client-sent/msg"): 1.6}),
        _measured("before_after", {
            (before_after.row_name(before_after.DELIVER, ratio), "ratio"): 0.91,
            (before_after.row_name(before_after.SEND_MANY, ratio), "ratio"): 0.59,
        }),
    ]  # fmt: skip

    targets = evaluate(results)

    assert _target(targets, "fairness: B's 10").met is True
    assert _target(targets, "client-sent commands").met is False
    assert _target(targets, "no-op delivery, after / before").met is True
    assert _target(targets, "send_many, after / before").met is False
    rss = _target(targets, "fairness: worker peak RSS")
    assert rss.met is None and "no 'worker peak RSS, full / tenth' in fairness" in rss.measured
    assert _target(targets, "memory per idle tenant").measured == "not measured (memory not run)"


def test_before_children_import_the_relayq_of_the_commit_before_the_fair_layout(
    tmp_path: Path,
) -> None:
    tree = extract_baseline(tmp_path)
    assert not (tree / "bench").exists()  # bench comes from this tree
    done = subprocess.run(
        [sys.executable, "-m", "bench.child", "bench.baseline_tree:relayq_file"],
        env=child_env(baseline_env(tree)),
        cwd=Path(__file__).resolve().parents[1],  # this repository: must not shadow the tree
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f'BENCH_RESULT "{tree}' in done.stdout, done.stdout
