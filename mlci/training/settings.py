"""The typed ``train:`` and ``evaluate:`` params, and the sections the backends own.

Pure: no file I/O and no heavy imports, so backends (``sklearn.py``, ``torch.py``) and the
table in :mod:`mlci.training.backends` can import it without importing each other. Keys are
checked with the settings helpers of :mod:`mlci.settings.gates` (one "did you mean", one bool, one
number), as every ``mlci:`` section is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlci.errors import ConfigError
from mlci.settings.gates import as_float, reject_unknown

TASKS = ("classification", "regression")
DEFAULT_ESTIMATORS = {
    "classification": "sklearn.ensemble.RandomForestClassifier",
    "regression": "sklearn.ensemble.RandomForestRegressor",
}


@dataclass(frozen=True)
class TrainParams:
    data: str
    target: str
    drop: tuple[str, ...] = ()
    test_size: float = 0.25
    seed: int = 0
    task: str = "classification"
    backend: str = "sklearn"
    estimator: str = DEFAULT_ESTIMATORS["classification"]
    params: Mapping[str, Any] = field(default_factory=dict)
    torch: Mapping[str, Any] = field(default_factory=dict)
    model_path: str = "models/model.pkl"
    facts_path: str = "reports/train.json"
    # Whether params.yaml names ``facts_path`` (else dvc.yaml's train stage may declare it).
    facts_path_set: bool = False


# Keys a user may write under ``train:`` (``facts_path_set`` is derived, not a setting).
TRAIN_KEYS = [f.name for f in dataclasses.fields(TrainParams) if f.name != "facts_path_set"]


@dataclass(frozen=True)
class TorchParams:
    """``train.torch``: the network (built-in MLP or the user's module) and its training."""

    hidden: tuple[int, ...] = (32,)
    epochs: int = 100
    lr: float = 0.01
    weight_decay: float = 0.0
    patience: int = 20
    checkpoint: str | None = None
    module: str | None = None
    module_args: Mapping[str, Any] = field(default_factory=dict)
    deterministic: bool = False
    standardize_target: bool = True


@dataclass(frozen=True)
class EvalParams:
    slice_by: tuple[str, ...] = ()
    metrics_path: str = "metrics.json"
    plots_dir: str = "plots"


def keys_of(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def as_int(value: Any, where: str) -> int:
    number = as_float(value, where)
    if number != int(number):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}", fix="e.g. 42")
    return int(number)


def torch_params(section: Any, where: str = "train.torch") -> TorchParams:
    """Check and type ``train.torch`` (callers of the trainer may also pass a plain dict)."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping", fix="e.g. torch: {hidden: [32]}")
    reject_unknown(section, keys_of(TorchParams), where)
    d = TorchParams()
    widths = section.get("hidden", d.hidden)
    try:
        hidden = tuple(int(h) for h in (widths if isinstance(widths, (list, tuple)) else [widths]))
        epochs = int(section.get("epochs", d.epochs))
        patience = int(section.get("patience", d.patience))
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: hidden, epochs and patience must be integers; lr and weight_decay numbers",
            fix="e.g. hidden: [32, 16], epochs: 200, patience: 20, lr: 0.01",
        ) from None
    lr = as_float(section.get("lr", d.lr), f"{where}.lr")
    weight_decay = as_float(section.get("weight_decay", d.weight_decay), f"{where}.weight_decay")
    module_args = section.get("module_args") or {}
    if not isinstance(module_args, Mapping):
        raise ConfigError(f"{where}.module_args must be a mapping", fix="e.g. {width: 64}")
    deterministic = _flag(section, "deterministic", d.deterministic, where)
    standardize_target = _flag(section, "standardize_target", d.standardize_target, where)
    module, checkpoint = section.get("module"), section.get("checkpoint")
    return TorchParams(
        hidden=hidden,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        patience=patience,
        checkpoint=str(checkpoint) if checkpoint else None,
        module=str(module) if module else None,
        module_args=dict(module_args),
        deterministic=deterministic,
        standardize_target=standardize_target,
    )


def _flag(section: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """A YAML boolean; a string ("yes", "true") here is a typo, not a flag."""
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be true or false", fix=f"{key}: true")
    return value


def typed_train(section: Mapping[str, Any], where: str, backend: str) -> TrainParams:
    """``train:`` as a mapping -> :class:`TrainParams`; ``backend`` is the table's name for
    ``train.backend``, already checked."""
    reject_unknown(section, TRAIN_KEYS, where)
    for key in ("data", "target"):
        if not section.get(key):
            raise ConfigError(f"{where}.{key} is not set", fix=f"add `{key}:` under `train:`")
    test_size = as_float(section.get("test_size", 0.25), f"{where}.test_size")
    seed = as_int(section.get("seed", 0), f"{where}.seed")
    if not 0 < test_size < 1:
        raise ConfigError(f"{where}.test_size must be between 0 and 1", fix="e.g. 0.25")
    task = str(section.get("task", "classification"))
    if task not in TASKS:
        raise ConfigError(
            f"{where}.task '{task}' is not a task", fix=f"use one of: {', '.join(TASKS)}"
        )
    drop = section.get("drop") or []
    params = section.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}.params must be a mapping", fix="e.g. params: {alpha: 1.0}")
    return TrainParams(
        data=str(section["data"]),
        target=str(section["target"]),
        drop=tuple(str(d) for d in (drop if isinstance(drop, list) else [drop])),
        test_size=test_size,
        seed=seed,
        task=task,
        backend=backend,
        estimator=str(section.get("estimator", DEFAULT_ESTIMATORS[task])),
        params=dict(params),
        torch=dict(section.get("torch") or {}),
        model_path=str(section.get("model_path", TrainParams.model_path)),
        facts_path=str(section.get("facts_path", TrainParams.facts_path)),
        facts_path_set="facts_path" in section,
    )


def typed_eval(section: Mapping[str, Any], where: str) -> EvalParams:
    reject_unknown(section, keys_of(EvalParams), where)
    slices = section.get("slice_by") or []
    return EvalParams(
        slice_by=tuple(str(s) for s in (slices if isinstance(slices, list) else [slices])),
        metrics_path=str(section.get("metrics_path", EvalParams.metrics_path)),
        plots_dir=str(section.get("plots_dir", EvalParams.plots_dir)),
    )
