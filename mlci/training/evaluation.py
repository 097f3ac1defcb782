"""Classification and regression metrics, slice metrics with their gaps, and plot data in
DVC's formats.

Pure functions over arrays: no files, no MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_CURVE_POINTS = 200


def classification_metrics(y_true: Any, proba: Any, classes: Sequence[Any]) -> dict[str, float]:
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    binary = len(classes) == 2
    avg = "binary" if binary else "macro"
    pos = classes[1] if binary else 1
    kw: dict[str, Any] = {"average": avg, "zero_division": 0}
    if binary:
        kw["pos_label"] = pos
    out = {
        "accuracy": float(m.accuracy_score(y_true, pred)),
        "precision": float(m.precision_score(y_true, pred, **kw)),
        "recall": float(m.recall_score(y_true, pred, **kw)),
        "f1": float(m.f1_score(y_true, pred, **kw)),
        "log_loss": float(m.log_loss(y_true, proba, labels=list(classes))),
    }
    if len(np.unique(y_true)) > 1:
        score = proba[:, 1] if binary else proba
        extra = {} if binary else {"multi_class": "ovr", "labels": list(classes)}
        out["roc_auc"] = float(m.roc_auc_score(y_true, score, **extra))
    return {k: round(v, 10) for k, v in out.items()}


def regression_metrics(y_true: Any, pred: Any) -> dict[str, float]:
    """MAE, RMSE and R² (R² only with at least two rows)."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=float)
    pred = np.asarray(pred, dtype=float)
    out = {
        "mae": float(m.mean_absolute_error(y_true, pred)),
        "rmse": float(np.sqrt(m.mean_squared_error(y_true, pred))),
    }
    if len(y_true) > 1:
        out["r2"] = float(m.r2_score(y_true, pred))
    return {k: round(v, 10) for k, v in out.items()}


def slice_metrics(
    y_true: Any, pred: Any, groups: Mapping[str, Any], positive: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-value metrics for each slice column, and the fairness gaps between values.

    Gaps: accuracy gap, demographic parity difference (positive-prediction rate) and
    equal-opportunity difference (true-positive rate), each max minus min over values.
    """
    y_true = np.asarray(y_true)
    pred = np.asarray(pred)
    slices: dict[str, Any] = {}
    gaps: dict[str, Any] = {}
    for column, values in groups.items():
        values = np.asarray(values)
        per: dict[str, Any] = {}
        for value in sorted(np.unique(values).tolist(), key=str):
            mask = values == value
            yt, yp = y_true[mask], pred[mask]
            positives = yt == positive
            per[str(value)] = {
                "n": int(mask.sum()),
                "accuracy": round(float((yt == yp).mean()), 10),
                "positive_rate": round(float((yp == positive).mean()), 10),
                "tpr": round(float((yp[positives] == positive).mean()), 10)
                if positives.any()
                else None,
            }
        slices[column] = per

        def spread(key: str, per: dict[str, Any] = per) -> float:
            vals = [v[key] for v in per.values() if v[key] is not None]
            return round(max(vals) - min(vals), 10) if vals else 0.0

        gaps[column] = {
            "accuracy_gap": spread("accuracy"),
            "demographic_parity_difference": spread("positive_rate"),
            "equal_opportunity_difference": spread("tpr"),
        }
    return slices, gaps


def regression_slice_metrics(
    y_true: Any, pred: Any, groups: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-value row count and MAE for each slice column; the gap is max minus min MAE."""
    errors = np.abs(np.asarray(y_true, dtype=float) - np.asarray(pred, dtype=float))
    slices: dict[str, Any] = {}
    gaps: dict[str, Any] = {}
    for column, values in groups.items():
        values = np.asarray(values)
        per = {
            str(value): {
                "n": int((values == value).sum()),
                "mae": round(float(errors[values == value].mean()), 10),
            }
            for value in sorted(np.unique(values).tolist(), key=str)
        }
        slices[column] = per
        maes = [v["mae"] for v in per.values()]
        gaps[column] = {"mae_gap": round(max(maes) - min(maes), 10) if maes else 0.0}
    return slices, gaps


def thin(rows: Sequence[dict[str, float]], limit: int = MAX_CURVE_POINTS) -> list[dict[str, float]]:
    """At most ``limit`` rows, evenly spaced, always keeping the first and the last."""
    if len(rows) <= limit:
        return list(rows)
    keep = np.unique(np.linspace(0, len(rows) - 1, num=limit).round().astype(int))
    return [rows[i] for i in keep]


def confusion_rows(y_true: Any, pred: Any) -> list[dict[str, str]]:
    """One row per prediction: DVC's ``confusion`` template input."""
    return [{"actual": str(a), "predicted": str(p)} for a, p in zip(y_true, pred, strict=True)]


def roc_rows(y_true: Any, score: Any, positive: Any) -> list[dict[str, float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y_true), np.asarray(score), pos_label=positive)
    return thin(
        [
            {"fpr": round(float(f), 6), "tpr": round(float(t), 6)}
            for f, t in zip(fpr, tpr, strict=True)
        ]
    )


def pr_rows(y_true: Any, score: Any, positive: Any) -> list[dict[str, float]]:
    """The precision-recall curve by rising recall (from recall 0, precision 1), thinned."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(
        np.asarray(y_true), np.asarray(score), pos_label=positive
    )
    return thin(
        [
            {"recall": round(float(r), 6), "precision": round(float(p), 6)}
            for r, p in zip(recall[::-1], precision[::-1], strict=True)
        ]
    )


def residual_rows(y_true: Any, pred: Any) -> list[dict[str, float]]:
    """One row per prediction: a scatter of actual against predicted values."""
    return [
        {"actual": round(float(a), 6), "predicted": round(float(p), 6)}
        for a, p in zip(np.asarray(y_true), np.asarray(pred), strict=True)
    ]
