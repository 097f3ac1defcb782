"""Show your math, piece by piece without a project: the interleaved timing, the pseudo-metric
gates, permutation importance and its ranks, training cost, the settings, and the sections
rendered inert. Fast: no files, no network, tiny models."""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_report_inert import HOSTILE, MARKER, assert_inert

from mlci.errors import ConfigError
from mlci.insight import importance, pseudo, runcost, timing, traincost
from mlci.insight.model import Model
from mlci.insight.result import (
    FACTS_KEY,
    Drivers,
    Feature,
    Insight,
    RunCost,
    Side,
    Timings,
    TrainCost,
    Unavailable,
)
from mlci.report.insight import insight_sections
from mlci.report.render import ReportInput, Verdict, render
from mlci.settings.config import load
from mlci.settings.gates import Gate
from mlci.settings.insight import CostSettings, ExplainSettings
from mlci.verdict import metrics
from mlci.verdict.outcome import Outcome, of_comparison

# ---- timing ---------------------------------------------------------------------------------


def test_calls_are_taken_in_turn_reversed_every_other_round() -> None:
    seen: list[tuple[str, int]] = []
    calls = [lambda i: seen.append(("a", i)), lambda i: seen.append(("b", i))]
    times = timing.interleaved_ms(calls, 4)
    assert seen == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2), ("b", 3), ("a", 3)]
    assert [len(t) for t in times] == [3, 3]  # round 0 is the warm-up
    assert [len(t) for t in timing.interleaved_ms(calls, 1)] == [1, 1]  # unless it is alone
    assert [len(t) for t in timing.interleaved_ms(calls, 3, warmup=False)] == [3, 3]


def test_spread() -> None:
    found = timing.spread([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (found.p25, found.p50, found.p75, found.n) == (2.0, 3.0, 4.0, 5)
    assert found.iqr_rel == pytest.approx(2 / 3)


# ---- what it costs to run --------------------------------------------------------------------


def _frame(n: int = 20) -> Any:
    import pandas as pd

    return pd.DataFrame({"a": [float(i) for i in range(n)], "b": [1.0] * n})


def _model(label: str, predict: Any, size: int = 2_000_000, **kw: Any) -> Model:
    return Model(label, size, predict=predict, **kw)


def test_a_slower_model_is_timed_slower_and_both_get_every_round() -> None:
    def slow(x: Any) -> Any:
        time.sleep(0.002)
        return x.sum(axis=1)

    found = runcost.measure(
        _model("base", lambda x: x.sum(axis=1)),
        _model("pr", slow, 3_000_000),
        _frame(),
        row_rounds=12,
        batch_rounds=6,
    )
    assert isinstance(found.base, Side) and isinstance(found.head, Side)
    b, h = found.base.timings, found.head.timings
    assert isinstance(b, Timings) and isinstance(h, Timings)
    assert (b.row.n, h.row.n, b.batch.n, h.batch.n) == (12, 12, 6, 6)
    assert h.row.p50 > b.row.p50 and h.row.p50 >= 2.0
    assert (found.rows, found.batch_rows) == (20, 1000)
    values = Insight(found, Unavailable("-"), Unavailable("-")).values()
    assert values[pseudo.LATENCY_P95] == pseudo.Value(b.row.p95, h.row.p95)
    assert values[pseudo.MODEL_MB] == pseudo.Value(2.0, 3.0)


def test_a_model_that_raises_is_named_and_the_other_still_timed() -> None:
    def broken(x: Any) -> Any:
        raise ValueError("columns do not match")

    found = runcost.measure(
        _model("base", lambda x: x), _model("pr", broken), _frame(), row_rounds=5, batch_rounds=5
    )
    assert isinstance(found.head, Side)
    assert found.head.timings == Unavailable("predict raised ValueError: columns do not match")
    assert isinstance(found.base, Side) and isinstance(found.base.timings, Timings)
    value = Insight(found, Unavailable("-"), Unavailable("-")).values()[pseudo.LATENCY_P95]
    assert value.head is None and value.why.startswith("predict raised ValueError")


def test_the_time_budget_bounds_the_rounds_and_says_so() -> None:
    def slow(x: Any) -> Any:
        time.sleep(0.01)
        return x

    found = runcost.measure(_model("b", slow), _model("p", slow), _frame(), budget_s=0.1)
    assert isinstance(found.head, Side) and isinstance(found.head.timings, Timings)
    assert found.head.timings.row.n == runcost.MIN_ROUNDS
    assert found.note.startswith("The time budget (0.1 s) cut the rounds")


# ---- pseudo-metric gates ----------------------------------------------------------------------


def _comparison(gates: list[Gate]) -> metrics.Comparison:
    return metrics.compare(
        {"acc": 0.9}, {"acc": 0.9}, pseudo.without_pseudo(gates), base_rev="main"
    )


def test_gates_on_pseudo_metrics_are_judged_once_measured() -> None:
    gates = [
        Gate("acc", "higher"),
        Gate(pseudo.LATENCY_P95, "lower", rel_tol=0.2),
        Gate(pseudo.MODEL_MB, "lower", max=1.0),
        Gate(pseudo.COST, "lower", max=5.0),
    ]
    values = {
        pseudo.LATENCY_P95: pseudo.Value(10.0, 13.0),
        pseudo.MODEL_MB: pseudo.Value(0.6, 0.5),  # smaller: better
        pseudo.COST: pseudo.Value(None, 0.25),
    }
    c = pseudo.judged(_comparison(gates), values, gates)
    by = {m.name: m for m in c.metrics}
    assert by[pseudo.LATENCY_P95].status == metrics.FAIL
    assert "got worse by 3" in by[pseudo.LATENCY_P95].message
    assert by[pseudo.MODEL_MB].status == metrics.PASS
    assert by[pseudo.COST].status == metrics.NEW  # no base cost: its max still applies
    assert of_comparison(c).outcome is Outcome.FAILED


def test_a_pseudo_metric_the_pr_lacks_fails_a_required_gate_and_skips_an_optional_one() -> None:
    gates = [Gate(pseudo.BATCH, "lower"), Gate(pseudo.COST, "lower", max=1, required=False)]
    values = {pseudo.BATCH: pseudo.Value(3.0, None, "predict raised KeyError: 'x'")}
    c = pseudo.judged(_comparison(gates), values, gates)
    by = {m.name: m for m in c.metrics}
    assert by[pseudo.BATCH].status == metrics.FAIL
    assert by[pseudo.BATCH].message.endswith("on the PR: predict raised KeyError: 'x'")
    assert by[pseudo.COST].status == metrics.SKIPPED


def test_only_pseudo_gates_still_make_a_judged_check() -> None:
    gates = [Gate(pseudo.MODEL_MB, "lower", max=10)]
    before = _comparison(gates)
    assert any(n.startswith("no gates are configured") for n in before.notices)
    c = pseudo.judged(before, {pseudo.MODEL_MB: pseudo.Value(1.0, 1.0)}, gates)
    assert not any(n.startswith("no gates are configured") for n in c.notices)
    assert of_comparison(c).outcome is Outcome.PASSED
    assert pseudo.judged(before, {}, []) is before  # no pseudo gate: nothing changes


# ---- what drives the predictions --------------------------------------------------------------


def test_permutation_importance_finds_the_feature_that_drives_the_model() -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"signal": rng.normal(size=200), "noise": rng.normal(size=200)})
    y = (x["signal"] > 0).astype(int)
    est = LogisticRegression().fit(x, y)
    found = importance.permute(Model("m", 1, est.predict, est), x, y, repeats=3)
    assert isinstance(found, importance.Scores)
    assert found.scoring == "accuracy" and found.repeats == 3
    assert found.mean["signal"] > 0.3 > abs(found.mean["noise"])
    not_sklearn = importance.permute(Model("m", 1, lambda v: v, object(), kind="torch"), x, y)
    assert not_sklearn == Unavailable(
        "permutation importance needs a scikit-learn estimator; the model is a torch"
    )


def _scores(mean: dict[str, float]) -> importance.Scores:
    return importance.Scores(mean, dict.fromkeys(mean, 0.01), 5, "accuracy", 0.1)


def test_ranks_and_the_features_that_entered_or_left_the_top() -> None:
    base = _scores({"a": 0.3, "b": 0.2, "c": 0.1, "d": 0.0})
    head = _scores({"a": 0.1, "b": 0.2, "c": 0.0, "d": 0.3})
    d = importance.compare(base, head, rows=50, budget_s=10, top=2)
    assert [(f.name, f.base_rank, f.head_rank) for f in d.features] == [
        ("d", 4, 1),
        ("b", 2, 2),
        ("a", 1, 3),
    ]
    assert (d.entered, d.left) == (("d",), ("a",))
    alone = importance.compare(Unavailable("no base"), head, rows=50, budget_s=10, top=2)
    assert alone.entered == () and alone.base_why == "no base"


# ---- what it costs to train -------------------------------------------------------------------


def test_money_only_where_a_rate_is_set() -> None:
    unpriced = traincost.train_cost(CostSettings(), wall_s=3600.0, cpu_s=100.0, gpu_hours=1.0)
    assert isinstance(unpriced, TrainCost) and unpriced.money is None
    rates = CostSettings(runner_hour=0.5, gpu_hour=2.0, currency="EUR")
    priced = traincost.train_cost(rates, wall_s=1800.0, cpu_s=10.0, gpu_hours=0.25)
    assert isinstance(priced, TrainCost) and priced.money == pytest.approx(0.75)
    reused = traincost.train_cost(rates, wall_s=1800.0, cpu_s=1.0, gpu_hours=0.25, reused=True)
    assert isinstance(reused, TrainCost) and reused.money == pytest.approx(0.25)
    assert traincost.train_cost(rates, wall_s=None, cpu_s=None) == Unavailable(
        "this check did not run the reproduce stage (nothing was trained here)"
    )
    assert Insight(Unavailable("-"), Unavailable("-"), priced).values()[pseudo.COST].head == 0.75
    assert traincost.cpu_seconds() > 0


# ---- settings ---------------------------------------------------------------------------------


def test_settings(tmp_path: Any) -> None:
    (tmp_path / "params.yaml").write_text(
        "mlci:\n  explain: {data: data/eval.csv, target: y, max_rows: 500, seconds: 9}\n"
        "  cost: {runner_hour: 0.36, currency: USD}\n"
    )
    s = load(tmp_path, env={})
    assert s.explain == ExplainSettings("data/eval.csv", "y", 500, 9.0)
    assert s.cost == CostSettings(0.36, None, "USD") and s.cost.priced
    assert load(tmp_path / "..", env={}).explain == ExplainSettings()
    for bad, where in (
        ({"dta": "x"}, "unknown key 'dta'"),
        ({"data": "../outside.csv"}, "points outside the project"),
        ({"max_rows": 3}, "max_rows"),
    ):
        with pytest.raises(ConfigError, match=where):
            ExplainSettings.from_mapping(bad)
    with pytest.raises(ConfigError, match="negative"):
        CostSettings.from_mapping({"gpu_hour": -1})


# ---- the sections, rendered ---------------------------------------------------------------------


def _insight() -> Insight:
    row = timing.Spread(1.0, 2.0, 3.0, 4.0, 50)
    batch = timing.Spread(10.0, 20.0, 30.0, 40.0, 10)
    names = list(HOSTILE)
    run = RunCost(
        Side(names[2], 1_500_000, Timings(row, batch)),
        Side(names[3], 1_000_000, Unavailable(names[1])),
        rows=133,
        note=names[7],
    )
    features = tuple(
        Feature(n, 0.2 - i / 100, 0.01, i + 1, 0.1, 12 - i) for i, n in enumerate(names)
    )
    drivers = Drivers(
        features,
        top=10,
        entered=(names[0],),
        left=(names[11],),
        rows=133,
        repeats=5,
        scoring="accuracy",
        seconds=1.5,
        budget_s=10,
        base_why=names[5],
    )
    train = TrainCost(30.0, 12.0, 1.0, 2.0, money=0.003, currency=names[4], formula=names[9])
    return Insight(run, drivers, train, 4.2)


def test_the_sections_compare_base_and_pr_and_keep_data_inert() -> None:
    md = insight_sections({FACTS_KEY: _insight()})
    assert "| predict one row, p95 (ms) · `mlci.latency_p95_ms` | 4 | — | — |" in md
    assert "| model size (MB) · `mlci.model_mb` | 1.5 | 1 | -33.3% |" in md
    assert "| 12 → 1 ↑ |" in md
    assert "| training (fit) time, as recorded | 1.0 s | 2.0 s |" in md
    report = render(
        ReportInput("mlci", Verdict(Outcome.PASSED, "ok"), facts={FACTS_KEY: _insight()}),
        marker=MARKER,
    )
    assert_inert(report, HOSTILE)
    assert insight_sections({}) == ""  # the check did not get as far as measuring


def test_unavailable_sections_say_why() -> None:
    md = insight_sections(
        {
            FACTS_KEY: Insight(
                Unavailable("the project declares no model"),
                Unavailable("permutation importance needs a scikit-learn estimator"),
                Unavailable("this check did not run the reproduce stage"),
            )
        }
    )
    assert "### What it costs to run\n\n_Not available: the project declares no model._" in md
    assert "### What drives the predictions\n\n_Not available: permutation importance" in md
    assert "### What it costs to train\n\n_Not available: this check did not run" in md


# ---- the check's loader -------------------------------------------------------------------------


def test_a_projects_own_model_is_called_on_the_table_explain_names(tmp_path: Any) -> None:
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlci.settings.config import Settings
    from mlci.training import explain

    frame = pd.DataFrame({"b": [0.0, 1.0] * 30, "a": [1.0, 0.0] * 30, "y": [0, 1] * 30})
    est = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    joblib.dump(est, tmp_path / "model.joblib")
    frame.to_csv(tmp_path / "eval.csv", index=False)
    model = explain.load(tmp_path, tmp_path / "model.joblib", "model.joblib", 10)
    assert model.features == ("a", "b") and model.estimator is not None
    settings = Settings(root=tmp_path, explain=ExplainSettings("eval.csv", "y", max_rows=20))
    rows = explain.evaluation_rows(tmp_path, settings, model, Unavailable("no base"))
    assert not isinstance(rows, Unavailable)
    x, y = rows
    assert len(x) == 20 and list(y.index) == list(x.index)
    assert list(model.inputs(x).columns) == ["a", "b"]  # the model's order, not the table's
    unset = explain.evaluation_rows(tmp_path, Settings(root=tmp_path), model, model)
    assert unset == Unavailable(
        "a project's own model is measured on the rows `mlci.explain: {data, target}` names"
    )


def test_nothing_to_measure_is_said_and_a_required_gate_fails_with_the_reason(
    tmp_path: Any,
) -> None:
    from dataclasses import dataclass, field

    from mlci.check import insight
    from mlci.settings.config import Settings

    @dataclass
    class State:
        comparison: metrics.Comparison | None
        timings: dict[str, float] = field(default_factory=dict)
        cpu: dict[str, float] = field(default_factory=dict)

    gates = (Gate(pseudo.MODEL_MB, "lower"),)
    facts: dict[str, Any] = {}
    c = insight.measure(
        tmp_path, Settings(root=tmp_path, gates=gates), State(_comparison([*gates])), facts
    )
    found = facts[FACTS_KEY]
    assert isinstance(found.run, RunCost) and isinstance(found.run.head, Unavailable)
    assert "dvc.yaml" in found.run.head.why  # no project here: said, not raised
    assert isinstance(found.train, Unavailable)
    assert c is not None and c.failed[0].message.startswith(
        "mlci.model_mb could not be measured on the PR: "
    )
