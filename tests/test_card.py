"""The model card's "What drives its predictions": the declared model's permutation importance
on the evaluation rows (:func:`mlci.training.explain.drivers`, the PR check's computation), in
the card's Markdown and JSON, or one line saying why it is not available. No git, DVC or
MLflow: a model file and a table in a temporary folder (the promotion itself is in
tests/test_release.py)."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

from mlci.insight.result import Drivers, Unavailable
from mlci.promotion import card
from mlci.settings.config import Settings
from mlci.settings.insight import ExplainSettings
from mlci.training import explain
from mlci.verdict import metrics

NOISE = "<img src=x onerror=alert(1)>|@octocat"  # a column name is data too


def _facts(drivers: Drivers | Unavailable) -> card.CardFacts:
    return card.CardFacts(
        model="m",
        version="3",
        role="champion",
        git_sha="a" * 40,
        run_id="r1",
        comparison=metrics.compare(None, {"accuracy": 0.9}, (), base_rev="champion"),
        drivers=drivers,
    )


def _section(markdown: str) -> str:
    return markdown[markdown.index("## What drives its predictions") : markdown.index("## Size")]


def _project(tmp_path: Path, model: Any) -> Settings:
    import joblib
    import pandas as pd

    signal = [0.0, 1.0, 1.0, 0.0] * 15
    frame = pd.DataFrame({NOISE: [0.5, 0.5, 0.25, 0.25] * 15, "signal": signal})  # no label
    frame["y"] = [int(v) for v in signal]
    frame.to_csv(tmp_path / "eval.csv", index=False)
    if callable(model):
        model = model(frame[[NOISE, "signal"]], frame["y"])
    joblib.dump(model, tmp_path / "model.joblib")
    return Settings(
        root=tmp_path, model="model.joblib", explain=ExplainSettings("eval.csv", "y", max_rows=40)
    )


def test_the_card_lists_the_top_features_with_their_importance(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from cmark import assert_inert, render

    settings = _project(tmp_path, lambda x, y: LogisticRegression().fit(x, y))
    found = explain.drivers(tmp_path, settings)
    assert isinstance(found, Drivers), found
    facts = _facts(found)
    section = _section(card.render(facts))
    assert "Not available" not in section
    assert "how much accuracy drops when one feature's values are shuffled" in section
    assert "seed 0, on 40 evaluation rows" in section  # mlci.explain.max_rows of the 60
    row = r"^\| (\d+) \| (`+)(.+?)\2 \| (-?\d+\.\d{4}) \| (\d+\.\d{4}) \|$"
    rows = re.findall(row, section, re.M)
    assert [(rank, name) for rank, _, name, _, _ in rows] == [
        ("1", "signal"),
        ("2", NOISE.replace("|", "\\|")),
    ], section
    assert float(rows[0][3]) > 0.3 > abs(float(rows[1][3]))  # the label is the signal
    html = render(section)
    assert_inert(html)
    assert html.count("<tr>") == 3, html  # the header and two features: the `|` kept its cell
    doc = card.to_json(facts)["importance"]
    assert doc["not_available"] is None and doc["rows"] == 40 and doc["seed"] == 0
    assert [f["feature"] for f in doc["features"]] == ["signal", NOISE]
    assert doc["features"][0]["rank"] == 1 and doc["features"][0]["importance"] > 0.3


def test_a_model_that_is_not_a_scikit_learn_estimator_says_why(tmp_path: Path) -> None:
    settings = _project(tmp_path, types.SimpleNamespace(predict=len))  # callable, not sklearn
    found = explain.drivers(tmp_path, settings)
    why = (
        "permutation importance needs a scikit-learn estimator; the model is a "
        "types.SimpleNamespace"
    )
    assert found == Unavailable(why)
    facts = _facts(found)
    assert _section(card.render(facts)).split("\n") == [
        "## What drives its predictions",
        "",
        f"Not available: {why}.",
        "",
        "",
    ]
    assert card.to_json(facts)["importance"] == {"features": [], "not_available": why}


def test_a_model_file_mlci_cannot_call_or_no_model_at_all_says_why(tmp_path: Path) -> None:
    settings = _project(tmp_path, types.SimpleNamespace(weights=[1.0]))  # no predict
    assert explain.drivers(tmp_path, settings) == Unavailable(
        "a types.SimpleNamespace has no predict method"
    )
    (tmp_path / "model.joblib").write_bytes(b"PK not a pickle")
    assert explain.drivers(tmp_path, settings) == Unavailable(
        "it is files; mlci calls models saved as pickle or joblib files"
    )
    (tmp_path / "model.joblib").unlink()
    assert explain.drivers(tmp_path, settings) == Unavailable(
        "model.joblib does not exist in the work tree"
    )
    bare = Settings(root=tmp_path, explain=settings.explain)
    found = explain.drivers(tmp_path, bare)
    assert isinstance(found, Unavailable) and found.why.startswith("the project declares no model")
