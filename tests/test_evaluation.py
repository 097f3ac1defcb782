"""The pure evaluation functions: regression metrics, slices, curve plot data and its thinning."""

from __future__ import annotations

import numpy as np
import pytest

from mlci.training.evaluation import (
    MAX_CURVE_POINTS,
    pr_rows,
    regression_metrics,
    regression_slice_metrics,
    residual_rows,
    roc_rows,
    thin,
)


def test_regression_metrics_on_known_values() -> None:
    # errors 0, 0, 0, 2: MAE 0.5, RMSE sqrt(4/4) = 1, R² = 1 - 4 / 5 = 0.2
    assert regression_metrics([1, 2, 3, 4], [1, 2, 3, 6]) == {"mae": 0.5, "rmse": 1.0, "r2": 0.2}
    assert regression_metrics([3.0], [1.0]) == {"mae": 2.0, "rmse": 2.0}


def test_regression_slices_give_mae_per_value_and_the_gap() -> None:
    y_true = [10.0, 10.0, 10.0, 0.0, 0.0]
    pred = [11.0, 9.0, 10.0, 4.0, 0.0]
    slices, gaps = regression_slice_metrics(y_true, pred, {"g": ["a", "a", "a", "b", "b"]})
    assert slices == {"g": {"a": {"n": 3, "mae": pytest.approx(2 / 3)}, "b": {"n": 2, "mae": 2.0}}}
    assert gaps["g"]["mae_gap"] == pytest.approx(2.0 - 2 / 3)


def test_pr_rows_by_rising_recall() -> None:
    rows = pr_rows([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], positive=1)
    assert rows == [
        {"recall": 0.0, "precision": 1.0},
        {"recall": 0.5, "precision": 1.0},
        {"recall": 0.5, "precision": 0.5},
        {"recall": 1.0, "precision": 0.666667},
        {"recall": 1.0, "precision": 0.5},
    ]


def test_long_curves_are_thinned_evenly_keeping_both_ends() -> None:
    from sklearn.metrics import precision_recall_curve, roc_curve

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=5000)
    score = rng.random(5000) + 0.3 * y  # overlapping classes: thousands of thresholds
    assert len(roc_curve(y, score)[0]) > 1000 and len(precision_recall_curve(y, score)[0]) > 1000
    roc, pr = roc_rows(y, score, 1), pr_rows(y, score, 1)
    assert 100 < len(roc) <= MAX_CURVE_POINTS and 100 < len(pr) <= MAX_CURVE_POINTS
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}
    assert [r["fpr"] for r in roc] == sorted(r["fpr"] for r in roc)
    assert pr[0] == {"recall": 0.0, "precision": 1.0}
    assert pr[-1]["recall"] == 1.0 and pr[-1]["precision"] == pytest.approx(y.mean(), abs=1e-6)
    assert [r["recall"] for r in pr] == sorted(r["recall"] for r in pr)


def test_thin_spacing_and_short_input() -> None:
    rows = [{"i": float(i)} for i in range(1001)]
    kept = [r["i"] for r in thin(rows, limit=11)]
    assert kept == [float(i) for i in range(0, 1001, 100)]
    assert thin(rows[:5], limit=11) == rows[:5]


def test_residual_rows_pair_actual_and_predicted() -> None:
    assert residual_rows(np.array([1.5, 2]), np.array([1.25, 3.1234567])) == [
        {"actual": 1.5, "predicted": 1.25},
        {"actual": 2.0, "predicted": 3.123457},
    ]
