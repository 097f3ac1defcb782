from __future__ import annotations

import math

import pytest

from mlci.settings.gates import Gate
from mlci.verdict.metrics import FAIL, NEW, PASS, SKIPPED, compare, flatten, judge, merge


def test_flatten_nested_and_lists() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": [1, 2]}) == {
        "a.b": 1,
        "a.c.d": 2,
        "e": [1, 2],
    }
    assert flatten({"x": [{"y": 1}]}) == {"x.0.y": 1}


@pytest.mark.parametrize(
    "gate, base, head, status",
    [
        (Gate("acc", "higher"), 0.9, 0.91, PASS),
        (Gate("acc", "higher"), 0.9, 0.89, FAIL),
        (Gate("acc", "higher", abs_tol=0.02), 0.9, 0.885, PASS),
        (Gate("acc", "higher", abs_tol=0.02), 0.9, 0.879, FAIL),
        (Gate("loss", "lower"), 0.5, 0.49, PASS),
        (Gate("loss", "lower"), 0.5, 0.51, FAIL),
        (Gate("loss", "lower", rel_tol=0.05), 0.5, 0.52, PASS),
        (Gate("loss", "lower", rel_tol=0.05), 0.5, 0.53, FAIL),
        (Gate("loss", "lower", abs_tol=0.001, rel_tol=0.1), 0.5, 0.54, PASS),
        (Gate("acc", "higher", min=0.8), None, 0.79, FAIL),
        (Gate("acc", "higher", min=0.8), None, 0.81, NEW),
        (Gate("loss", "lower", max=1.0), 0.5, 1.2, FAIL),
        (Gate("acc", "higher"), 0.9, None, FAIL),
        (Gate("acc", "higher", required=False), 0.9, None, SKIPPED),
        (Gate("acc", "higher"), 0.9, math.nan, FAIL),
        (Gate("acc", "higher"), 0.9, "high", FAIL),
        (Gate("acc", "higher"), 0.9, 0.9, PASS),
    ],
)
def test_judge(gate: Gate, base: object, head: object, status: str) -> None:
    assert judge(gate, base, head)[0] == status


def test_judge_messages_carry_numbers() -> None:
    status, msg = judge(Gate("acc", "higher", abs_tol=0.01), 0.9, 0.85)
    assert status == FAIL
    assert "0.9 -> 0.85" in msg and "higher is better" in msg and "0.01" in msg
    assert "NaN" in judge(Gate("acc"), 0.9, math.nan)[1]
    assert "vanished" in judge(Gate("acc"), 0.9, None)[1]
    assert "'high'" in judge(Gate("acc"), 0.9, "high")[1]


def test_compare_reports_every_metric_and_gates() -> None:
    c = compare(
        {"acc": 0.9, "loss": 0.4, "old": 1.0},
        {"acc": 0.8, "loss": 0.3, "new": 2.0},
        [Gate("acc", "higher"), Gate("loss", "lower")],
        base_rev="main",
    )
    by = {m.name: m for m in c.metrics}
    assert set(by) == {"acc", "loss", "old", "new"}
    assert by["acc"].status == FAIL and by["loss"].status == PASS
    assert by["new"].base is None and by["old"].head is None
    assert by["acc"].change == pytest.approx(-0.1)
    assert by["acc"].rel_change == pytest.approx(-0.1 / 0.9)
    assert by["acc"].better is False and by["loss"].better is True
    assert not c.passed and [m.name for m in c.failed] == ["acc"]


def test_no_baseline_passes_with_notice() -> None:
    c = compare(None, {"acc": 0.5}, [Gate("acc")])
    assert c.passed and not c.has_baseline
    assert c.metrics[0].status == NEW
    assert any("no baseline" in n for n in c.notices)


def test_no_gates_reports_all_and_says_so() -> None:
    c = compare({"a": 1}, {"a": 2}, [])
    assert c.passed and c.gated == ()
    assert any("no gates" in n for n in c.notices)


def test_params_diff() -> None:
    c = compare(
        {},
        {},
        [],
        base_params={"train.depth": 3, "train.n": 1, "gone": 1},
        head_params={"train.depth": 5, "train.n": 1, "added": 2},
    )
    assert [(p.name, p.base, p.head) for p in c.params] == [
        ("added", None, 2),
        ("gone", 1, None),
        ("train.depth", 3, 5),
    ]


def test_merge_prefixes_only_collisions() -> None:
    assert merge({"a.json": {"x": 1, "y": 2}, "b.json": {"x": 3}}) == {
        "a.json:x": 1,
        "y": 2,
        "b.json:x": 3,
    }


@pytest.mark.parametrize(
    "name, direction",
    [
        ("loss", "lower"),
        ("val_loss", "lower"),
        ("valLoss", "lower"),
        ("eval/log_loss", "lower"),
        ("test.rmse", "lower"),
        ("mean_absolute_error", "lower"),
        ("perplexity", "lower"),
        ("wer", "lower"),
        ("test/accuracy", "higher"),
        ("eval.f1_macro", "higher"),
        ("roc_auc.test", "higher"),
        ("avg_prec", "higher"),
        ("Dice", "higher"),
        ("val/iou", "higher"),
        ("mAP50-95", "higher"),
        ("r2", "higher"),
        ("bleu", "higher"),
        ("precision@5", "higher"),
        ("eval/summary.json:acc", "higher"),  # the file part of a shared key is not read
        ("step", None),
        ("train/epoch", None),
        ("timestamp", None),
        ("lr", None),
        ("n", None),
        ("duration_s", None),
        ("auc_loss", None),  # the tokens disagree: unclassified, so neutral
        ("fairness.sex.accuracy_gap", "lower"),  # a distance between groups: smaller is better
        ("auc_disparity", "lower"),
        ("fairness.sex.equal_opportunity_difference", None),  # may be signed: not guessed
        ("val/accuracy_drop", "lower"),
        ("gap", None),  # a distance of nothing named
    ],
)
def test_direction_from_the_name(name: str, direction: str | None) -> None:
    from mlci.verdict.directions import direction_of

    assert direction_of(name) == direction


def test_tokens_and_counters() -> None:
    from mlci.verdict.directions import is_counter, tokens

    assert tokens("eval.f1_macro") == ["eval", "f1", "macro"]
    assert tokens("test/accuracy") == ["test", "accuracy"]
    assert tokens("trainLossEMA") == ["train", "loss", "ema"]
    assert is_counter("step") and is_counter("train/global_step") and is_counter("epoch")
    assert not is_counter("step_loss") and not is_counter("accuracy")


def test_ungated_metrics_get_the_direction_their_name_says() -> None:
    c = compare(
        {"dice": 0.81, "loss": 0.04, "lr": 0.1, "acc": 0.9},
        {"dice": 0.68, "loss": 0.30, "lr": 0.2, "acc": 0.8},
        [Gate("acc", "lower")],  # an explicit gate wins over the name
    )
    by = {m.name: m for m in c.metrics}
    assert by["dice"].better is False and by["dice"].status == "info"
    assert by["loss"].better is False and by["loss"].direction == "lower"
    assert by["lr"].better is None and by["lr"].direction is None
    assert by["acc"].direction == "lower" and by["acc"].better is True
    assert c.passed  # inferred directions never fail a check
    assert [m.name for m in c.worsened] == ["dice", "loss"]
    assert [m.name for m in c.directed] == ["dice", "loss"]


def test_suggested_gates_block() -> None:
    from mlci.verdict.directions import gates_yaml, suggest_gates

    found = suggest_gates(["val_loss", "step", "dice", "slices.sex.1.accuracy", "a.json:acc"])
    assert found == {"val_loss": "lower", "dice": "higher", "a.json:acc": "higher"}
    assert gates_yaml(found) == [
        "  gates:",
        "    val_loss: lower",
        "    dice: higher",
        '    "a.json:acc": higher',
    ]
    # a name that is not plain never reaches the block
    assert gates_yaml({"acc`\n```": "higher"}) == ["  gates:"]


def test_a_gate_on_what_only_the_pr_check_measures_is_skipped_elsewhere() -> None:
    """``mlci.latency_p95_ms`` & co. come from the PR check's own measurements: promote,
    monitor and compare (no such value on either side) show the gate skipped, not exit 2."""
    from mlci.errors import ConfigError
    from mlci.settings.gates import Gate
    from mlci.verdict.metrics import SKIPPED, compare

    gates = (Gate("accuracy"), Gate("mlci.latency_p95_ms"))
    c = compare({"accuracy": 0.9}, {"accuracy": 0.91}, gates)
    skipped = {m.name: m for m in c.metrics}["mlci.latency_p95_ms"]
    assert skipped.status == SKIPPED and "measured by the PR check only" in skipped.message
    assert c.passed
    with pytest.raises(ConfigError, match="gate 'acurracy' names a metric"):
        compare({"accuracy": 0.9}, {"accuracy": 0.91}, (Gate("acurracy"),))


def test_mlcis_own_settings_are_no_model_params() -> None:
    """A PR that changes `mlci.release` or a gate shows no such row in the Params table; the
    same keys in another params file are the project's own and stay."""
    from mlci.check.compare import _params

    files = {
        "params.yaml": b"train:\n  C: 1.0\nmlci:\n  release: {strategy: challenger}\n",
        "conf/model.yaml": b"mlci:\n  depth: 3\n",
    }
    found = _params(("params.yaml", "conf/model.yaml"), lambda p: files.get(p))
    assert found == {"train.C": 1.0, "conf/model.yaml:mlci.depth": 3}


def test_the_data_a_retraining_pr_repoints_is_found_up_the_stages() -> None:
    """The champion trained on an intermediate (prepared.csv); the file a retraining PR can
    repoint is the `dvc add`ed table it is made from, found up the stages (code left out);
    two such tables, or none, are said, never guessed (monitor.retrain.training_data)."""
    from mlci.project.pipeline import Out, Project, Stage

    project = Project(
        stages=(
            Stage(
                "prepare",
                "python src/prepare.py",
                outs=(Out("data/prepared.csv"),),
                deps=("src/prepare.py", "data/raw.csv", "data/extra.csv"),
            ),
            Stage(
                "train",
                "python src/train.py",
                outs=(Out("models/model.pkl"),),
                deps=("src/train.py", "data/prepared.csv"),
            ),
        )
    )
    added = {"data/raw.csv"}
    found = project.upstream(["data/prepared.csv"], added.__contains__)
    assert found == ("data/raw.csv", "data/extra.csv")  # extra.csv: no stage makes it
    assert [p for p in found if p in added] == ["data/raw.csv"]
    assert project.upstream(["data/raw.csv"], added.__contains__) == ("data/raw.csv",)
    assert project.upstream(["models/model.pkl"], lambda _: False) == (
        "data/raw.csv",
        "data/extra.csv",
    )  # up through train and prepare; the scripts are code, never data
