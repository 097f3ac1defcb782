"""``mlci train`` and ``mlci evaluate``: the steps around a backend, with files and MLflow."""

from __future__ import annotations

import json
import os
import pickle
import platform
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlci import git
from mlci.config import Settings
from mlci.data import file_md5
from mlci.errors import ConfigError, MlciError
from mlci.metrics import flatten
from mlci.training import tracking
from mlci.training.base import Trainer, TrainParams, eval_params, get_trainer, train_params
from mlci.training.gpu import GpuSampler

# The plot files ``evaluate`` writes into ``evaluate.plots_dir``, by task.
PLOT_FILES = ("confusion.json", "roc.json", "pr.json", "residuals.json")


@dataclass(frozen=True)
class Split:
    x_train: Any
    x_test: Any
    y_train: Any
    y_test: Any
    test_frame: Any


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when loaded) torch, CPU and CUDA."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)


def load_split(root: Path, params: TrainParams) -> Split:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from mlci.validation import read_table

    path = root / params.data
    if not path.exists():
        raise ConfigError(
            f"training data {params.data} not found",
            fix="run `mlci pull` or `dvc repro` first, or fix train.data",
        )
    frame = read_table(path)
    if params.target not in frame.columns:
        raise ConfigError(
            f"train.target '{params.target}' is not a column of {params.data}",
            fix=f"pick one of: {', '.join(map(str, frame.columns))}",
        )
    missing = [c for c in params.drop if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"train.drop names unknown columns: {', '.join(missing)}",
            fix="remove them from train.drop",
        )
    y = frame[params.target]
    x = pd.get_dummies(frame.drop(columns=[params.target, *params.drop]), dtype=float)
    if params.task == "regression":
        if not pd.api.types.is_numeric_dtype(y):
            raise ConfigError(
                f"train.target '{params.target}' is not numeric but train.task is regression",
                fix="pick a numeric target, or set train.task: classification",
            )
        stratify = None
    else:
        stratify = y if y.value_counts().min() >= 2 else None
    x_tr, x_te, y_tr, y_te, _, f_te = train_test_split(
        x, y, frame, test_size=params.test_size, random_state=params.seed, stratify=stratify
    )
    return Split(x_tr, x_te, y_tr, y_te, f_te)


@contextmanager
def project_importable(root: Path) -> Iterator[None]:
    """The repository root on ``sys.path`` while it is in effect: estimators and torch modules
    named by import path may live in the user's own code (the ``mlci`` script does not add it)."""
    entry = str(root.resolve())
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def model_name(params: TrainParams) -> str:
    """The estimator or torch module that was trained, for the facts and the MLflow run."""
    if params.backend == "sklearn":
        return params.estimator
    return str(params.torch.get("module") or "mlci.training.torch.TabularMLP")


def environment() -> dict[str, str]:
    """The fingerprint that makes a result reproducible: Python and key package versions."""
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "pandas", "scikit-learn", "torch", "mlflow", "dvc", "mlci"):
        try:
            env[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return env


def git_facts(root: Path) -> dict[str, Any]:
    try:
        sha = os.environ.get("MLCI_GIT_SHA") or git.head_sha(root)
        branch = os.environ.get("GITHUB_HEAD_REF") or git.branch(root)
    except MlciError:
        return {}
    return {"git_sha": sha, "branch": branch, "pr": os.environ.get("MLCI_PR_NUMBER")}


def train(root: Path, settings: Settings) -> dict[str, Any]:
    """Train the configured backend; write the model and its facts; log an MLflow run."""
    params = train_params(root, settings.params_file)
    seed_everything(params.seed)
    split = load_split(root, params)
    trainer = get_trainer(params.backend)
    seed_everything(params.seed)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if rank == 0:  # an unreachable tracking server fails now, not after the training
        tracking.configure(settings.tracking_uri)
    sampler = GpuSampler() if rank == 0 else GpuSampler(reason="sampled on rank 0")
    sampler.start()
    started = time.monotonic()
    try:
        with project_importable(root):
            model = trainer.fit(split.x_train, split.y_train, params)
    finally:
        gpu = sampler.stop()
    duration = time.monotonic() - started
    if rank != 0:
        # Under torchrun only rank 0 writes the model, the facts and the MLflow run.
        _finish_distributed()
        return {"rank": rank, "world_size": world, "duration_s": round(duration, 3)}
    bundle: dict[str, Any] = {
        "backend": params.backend,
        "task": params.task,
        "features": list(split.x_train.columns),
        "model": model,
    }
    if params.task == "classification":
        bundle["classes"] = list(getattr(model, "classes_", sorted(set(split.y_train))))
    model_path = root / params.model_path
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(pickle.dumps(bundle))
    data = {params.data: file_md5(root / params.data)}
    facts: dict[str, Any] = {
        "backend": params.backend,
        "task": params.task,
        "estimator": model_name(params),
        "device": trainer.device(),
        "duration_s": round(duration, 3),
        "world_size": world,
        "epochs": getattr(trainer, "epochs_run", None),
        "rows_train": len(split.x_train),
        "rows_test": len(split.x_test),
        "seed": params.seed,
        "data": data,
        "gpu": gpu,
        **git_facts(root),
        "environment": environment(),
    }
    facts.update(_track(root, settings, params, trainer, model, facts))
    facts_path = root / params.facts_path
    facts_path.parent.mkdir(parents=True, exist_ok=True)
    facts_path.write_text(
        json.dumps(facts, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    _finish_distributed()
    return facts


def _finish_distributed() -> None:
    import sys

    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _track(
    root: Path,
    settings: Settings,
    params: TrainParams,
    trainer: Any,
    model: Any,
    facts: dict[str, Any],
) -> dict[str, Any]:
    uri = settings.tracking_uri
    tracking.configure(uri)
    exp = tracking.ensure_experiment(settings.experiment, uri, root)
    with tracking.run(exp, uri, f"{params.backend}-{(facts.get('git_sha') or 'local')[:8]}") as r:
        tracking.log_params(
            flatten(
                {
                    "seed": params.seed,
                    "test_size": params.test_size,
                    "task": params.task,
                    "backend": params.backend,
                    "estimator": facts["estimator"],
                    "params": dict(params.params),
                    "torch": dict(params.torch) if params.backend == "torch" else {},
                }
            )
        )
        keys = ("git_sha", "branch", "pr", "device", "backend", "task")
        tags = {k: facts.get(k) for k in keys}
        tags.update({f"data.{p}": h for p, h in facts["data"].items()})
        tags.update({f"env.{k}": v for k, v in facts["environment"].items()})
        gpu = facts["gpu"]
        tags["gpu"] = gpu["gpus"][0]["name"] if gpu.get("available") else gpu.get("reason")
        tracking.set_tags(tags)
        try:
            trainer.log_model(model, "model")
        except Exception as exc:
            from mlci.errors import MlflowError

            raise MlflowError(
                f"MLflow could not log the {params.backend} model: "
                f"{str(exc).splitlines()[0][:300]}",
                fix="run with --debug; check the artifact store is writable",
            ) from exc
        return {
            "mlflow_run_id": r.info.run_id,
            "mlflow_experiment_id": exp,
            "mlflow_tracking_uri": tracking.public_uri(uri),
        }


def evaluate(root: Path, settings: Settings) -> dict[str, Any]:
    """Score the trained model on the held-out split; write metrics and plots for DVC."""
    params = train_params(root, settings.params_file)
    ev = eval_params(root, settings.params_file)
    model_path = root / params.model_path
    if not model_path.exists():
        raise ConfigError(
            f"model {params.model_path} not found", fix="run `mlci train` (or `dvc repro`) first"
        )
    with project_importable(root):
        bundle = pickle.loads(model_path.read_bytes())
    task = bundle.get("task", "classification")
    if task != params.task:
        raise ConfigError(
            f"model {params.model_path} was trained for {task} but train.task is {params.task}",
            fix="run `mlci train` (or `dvc repro`) again",
        )
    split = load_split(root, params)
    missing = [c for c in ev.slice_by if c not in split.test_frame.columns]
    if missing:
        raise ConfigError(
            f"evaluate.slice_by names unknown columns: {', '.join(missing)}",
            fix="use columns of the data file",
        )
    groups = {c: split.test_frame[c].to_numpy() for c in ev.slice_by}
    x_test = split.x_test.reindex(columns=bundle["features"], fill_value=0.0)
    trainer = get_trainer(bundle["backend"])
    score = _score_regression if task == "regression" else _score_classification
    metrics, plots = score(trainer, bundle, x_test, split.y_test, groups)
    _write_json(root / ev.metrics_path, metrics)
    for name in PLOT_FILES:
        if name not in plots:  # left by an earlier run with another task or class count
            (root / ev.plots_dir / name).unlink(missing_ok=True)
    for name, rows in plots.items():
        _write_json(root / ev.plots_dir / name, rows)
    _log_metrics(root, settings, params, metrics)
    return metrics


def _score_classification(
    trainer: Trainer, bundle: dict[str, Any], x: Any, y: Any, groups: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    import numpy as np

    from mlci import evaluation

    classes = bundle["classes"]
    proba = np.asarray(trainer.predict_proba(bundle["model"], x))
    metrics: dict[str, Any] = dict(evaluation.classification_metrics(y, proba, classes))
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    positive = classes[-1]
    if groups:
        metrics["slices"], metrics["fairness"] = evaluation.slice_metrics(y, pred, groups, positive)
    plots: dict[str, Any] = {"confusion.json": evaluation.confusion_rows(y, pred)}
    if len(classes) == 2:
        plots["roc.json"] = evaluation.roc_rows(y, proba[:, 1], positive)
        plots["pr.json"] = evaluation.pr_rows(y, proba[:, 1], positive)
    return metrics, plots


def _score_regression(
    trainer: Trainer, bundle: dict[str, Any], x: Any, y: Any, groups: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    from mlci import evaluation

    pred = trainer.predict(bundle["model"], x)
    metrics: dict[str, Any] = dict(evaluation.regression_metrics(y, pred))
    if groups:
        metrics["slices"], metrics["fairness"] = evaluation.regression_slice_metrics(
            y, pred, groups
        )
    return metrics, {"residuals.json": evaluation.residual_rows(y, pred)}


def _log_metrics(
    root: Path, settings: Settings, params: TrainParams, metrics: dict[str, Any]
) -> None:
    """Add the metrics to the training's MLflow run, when the facts name one."""
    facts_path = root / params.facts_path
    if not facts_path.exists():
        return
    facts = json.loads(facts_path.read_text(encoding="utf-8"))
    if facts.get("mlflow_run_id"):
        uri = settings.tracking_uri
        tracking.configure(uri)
        flat = {
            k.replace(":", "_"): v
            for k, v in flatten(metrics).items()
            if not k.startswith("slices.")
        }
        tracking.log_metrics(facts["mlflow_run_id"], flat, uri)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
