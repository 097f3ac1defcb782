"""``mlci train`` and ``mlci evaluate``: the steps around a backend, with files and MLflow."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci import git
from mlci.errors import ConfigError, MlciError
from mlci.project.data import file_md5
from mlci.registry import tags as vocab
from mlci.registry import tracking
from mlci.settings.config import Settings
from mlci.training import recorder, warm, worker
from mlci.training.backends import Trainer, backend, get_trainer
from mlci.training.base import TrainParams, eval_params, train_params
from mlci.training.facts import TrainingFacts, facts_path, runtime
from mlci.training.facts import load as load_facts
from mlci.training.gpu import GpuFacts, GpuSampler
from mlci.verdict.metrics import flatten

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

    from mlci.checks.frames import one_hot, read_table

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
    x = one_hot(frame, [params.target, *params.drop])
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


def environment() -> dict[str, str]:
    """The fingerprint that makes a result reproducible (``facts.runtime``: Python, OS, key
    package versions, CUDA, the runner image)."""
    return runtime()


def git_facts(root: Path) -> dict[str, Any]:
    try:
        sha = os.environ.get("MLCI_GIT_SHA") or git.head_sha(root)
        branch = os.environ.get("GITHUB_HEAD_REF") or git.branch(root)
    except MlciError:
        return {}
    return {"git_sha": sha, "branch": branch, "pr": os.environ.get("MLCI_PR_NUMBER")}


def train(root: Path, settings: Settings) -> dict[str, Any]:
    """Train the configured backend; write the model and its facts; record an MLflow run.

    Under ``mlci run`` the MLflow run is recorded by the check's recorder, which has MLflow
    open already (:mod:`mlci.training.recorder`). Alone, by a warm recorder that an earlier
    command left (or this one starts) where one may run (:mod:`mlci.training.warm`); else, when
    a CPU is free, by a worker process that starts now and imports MLflow while this one loads
    the data and fits; else in this process after the fit (see :mod:`mlci.training.worker`).
    Returns the facts as
    written (:meth:`TrainingFacts.to_dict`); on a rank other than 0 under ``torchrun`` only
    ``rank``, ``world_size`` and ``duration_s``.
    """
    params = train_params(root, settings.params_file)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    recording: worker.Recording | None = None
    if rank == 0 and recorder.available():
        recording = recorder.Remote(settings.tracking_uri, settings.experiment, root)
    elif rank == 0:  # an unreachable tracking server fails now, not after the training
        tracking.probe(settings.tracking_uri)
        recording = warm.remote(settings.tracking_uri, settings.experiment, root)
        recording = recording or worker.start(settings.tracking_uri, settings.experiment, root)
    try:
        facts = _train(root, settings, params, recording, rank, world)
    except BaseException:
        if recording is not None:
            recording.abort()
        raise
    _finish_distributed()
    return facts


def _train(
    root: Path,
    settings: Settings,
    params: TrainParams,
    recording: worker.Recording | None,
    rank: int,
    world: int,
) -> dict[str, Any]:
    seed_everything(params.seed)
    split = load_split(root, params)
    trainer = get_trainer(params.backend)
    seed_everything(params.seed)
    sampler = GpuSampler() if rank == 0 else GpuSampler(reason="sampled on rank 0")
    sampler.start()
    started = time.monotonic()
    try:
        with project_importable(root):
            model = trainer.fit(split.x_train, split.y_train, params)
    finally:
        gpu = GpuFacts.from_dict(sampler.stop())
    duration = time.monotonic() - started
    if recording is None:
        # Under torchrun only rank 0 writes the model, the facts and the MLflow run.
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
    facts = TrainingFacts(
        backend=params.backend,
        task=params.task,
        estimator=trainer.describe(params),
        device=trainer.device(),
        duration_s=round(duration, 3),
        world_size=world,
        epochs=getattr(trainer, "epochs_run", None),
        rows_train=len(split.x_train),
        rows_test=len(split.x_test),
        seed=params.seed,
        data={params.data: file_md5(root / params.data)},
        gpu=gpu,
        environment=runtime(gpu),
        **git_facts(root),
    )
    with tempfile.TemporaryDirectory(prefix="mlci-model-") as tmp:
        trainer.export_model(model, Path(tmp)).save(Path(tmp))
        run = (_run_name(facts), _run_params(params, facts), _run_tags(facts))
        ids = recording.finish(*run, Path(tmp))
    facts = dataclasses.replace(facts, **ids)
    facts.write(root / facts_path(root, params))
    return {**facts.to_dict(), "recorded_by": recording.where}


def _run_name(facts: TrainingFacts) -> str:
    return f"{facts.backend}-{(facts.git_sha or 'local')[:8]}"


def _run_params(params: TrainParams, facts: TrainingFacts) -> dict[str, Any]:
    """What the MLflow run records as params (``train.<backend>`` only for that backend)."""
    own = backend(params.backend).section
    section = {own: dict(getattr(params, own, None) or {})} if own else {}
    return flatten(
        {
            "seed": params.seed,
            "test_size": params.test_size,
            "task": params.task,
            "backend": params.backend,
            "estimator": facts.estimator,
            "params": dict(params.params),
            **section,
        }
    )


def _run_tags(facts: TrainingFacts) -> dict[str, str]:
    return vocab.trainer_run(
        git_sha=facts.git_sha,
        branch=facts.branch,
        pr=facts.pr,
        data=facts.data,
        environment=facts.environment,
        backend=facts.backend,
        task=facts.task,
        device=facts.device,
        gpu=facts.gpu.name(),
    )


def _finish_distributed() -> None:
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


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

    from mlci.training import evaluation

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
    from mlci.training import evaluation

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
    facts = load_facts(root, settings)
    if facts is not None and facts.mlflow_run_id:
        uri = settings.tracking_uri
        flat = {
            k.replace(":", "_"): v
            for k, v in flatten(metrics).items()
            if not k.startswith("slices.")
        }
        ask: dict[str, Any] = {"run_id": facts.mlflow_run_id, "metrics": flat}
        if recorder.available():
            answer = recorder.request("log_metrics", uri, **ask)
        else:  # alone: a warm recorder, if there is to be one (``mlci.training.warm``)
            answer = warm.request("log_metrics", uri, settings.experiment, root, **ask)
        if answer is None:
            tracking.configure(uri)
            tracking.log_metrics(facts.mlflow_run_id, flat, uri)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
