"""The Trainer protocol, the ``train:``/``evaluate:`` params, and backend lookup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlci.config import load_yaml
from mlci.errors import ConfigError

BACKENDS = ("sklearn", "torch")
TASKS = ("classification", "regression")
DEFAULT_ESTIMATORS = {
    "classification": "sklearn.ensemble.RandomForestClassifier",
    "regression": "sklearn.ensemble.RandomForestRegressor",
}


class Trainer(Protocol):
    """A backend. ``fit`` reads ``params.task``; evaluation calls ``predict_proba`` for
    classification (columns in ``model.classes_`` order) and ``predict`` for regression."""

    name: str

    def fit(self, x: Any, y: Any, params: TrainParams) -> Any: ...

    def predict_proba(self, model: Any, x: Any) -> Any: ...

    def predict(self, model: Any, x: Any) -> Any: ...

    def log_model(self, model: Any, name: str) -> None: ...

    def device(self) -> str: ...


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


def _section(root: Path, params_file: str, name: str) -> dict[str, Any]:
    path = root / params_file
    if not path.exists():
        raise ConfigError(
            f"{params_file} not found in {root}",
            fix=f"create it with a `{name}:` section (see the example)",
        )
    doc = load_yaml(path) or {}
    section = doc.get(name) if isinstance(doc, dict) else None
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"{params_file}: `{name}:` must be a mapping", fix="indent its keys")
    return section


def _check_keys(section: Mapping[str, Any], cls: type, where: str) -> None:
    import dataclasses
    import difflib

    known = [f.name for f in dataclasses.fields(cls)]
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(f"{where}: unknown key '{key}'", fix=hint)


def torch_params(section: Any, where: str = "train.torch") -> TorchParams:
    """Check and type ``train.torch`` (callers of the trainer may also pass a plain dict)."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping", fix="e.g. torch: {hidden: [32]}")
    _check_keys(section, TorchParams, where)
    d = TorchParams()
    widths = section.get("hidden", d.hidden)
    try:
        hidden = tuple(int(h) for h in (widths if isinstance(widths, (list, tuple)) else [widths]))
        epochs = int(section.get("epochs", d.epochs))
        patience = int(section.get("patience", d.patience))
        lr = float(section.get("lr", d.lr))
        weight_decay = float(section.get("weight_decay", d.weight_decay))
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: hidden, epochs and patience must be integers; lr and weight_decay numbers",
            fix="e.g. hidden: [32, 16], epochs: 200, patience: 20, lr: 0.01",
        ) from None
    module_args = section.get("module_args") or {}
    if not isinstance(module_args, Mapping):
        raise ConfigError(f"{where}.module_args must be a mapping", fix="e.g. {width: 64}")
    deterministic = section.get("deterministic", d.deterministic)
    standardize_target = section.get("standardize_target", d.standardize_target)
    for key, value in (
        ("deterministic", deterministic),
        ("standardize_target", standardize_target),
    ):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key} must be true or false", fix=f"{key}: true")
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


def train_params(root: Path, params_file: str = "params.yaml") -> TrainParams:
    section = _section(root, params_file, "train")
    where = f"{params_file}:train"
    _check_keys(section, TrainParams, where)
    for key in ("data", "target"):
        if not section.get(key):
            raise ConfigError(
                f"{where}.{key} is not set", fix=f"add `{key}:` under `train:` in {params_file}"
            )
    backend = str(section.get("backend", "sklearn"))
    if backend not in BACKENDS:
        raise ConfigError(
            f"{where}.backend '{backend}' is not a backend",
            fix=f"use one of: {', '.join(BACKENDS)}",
        )
    try:
        test_size = float(section.get("test_size", 0.25))
        seed = int(section.get("seed", 0))
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: test_size and seed must be numbers", fix="e.g. test_size: 0.25, seed: 42"
        ) from None
    if not 0 < test_size < 1:
        raise ConfigError(f"{where}.test_size must be between 0 and 1", fix="e.g. 0.25")
    task = str(section.get("task", "classification"))
    if task not in TASKS:
        raise ConfigError(
            f"{where}.task '{task}' is not a task", fix=f"use one of: {', '.join(TASKS)}"
        )
    torch = section.get("torch") or {}
    torch_params(torch, f"{where}.torch")
    drop = section.get("drop") or []
    return TrainParams(
        data=str(section["data"]),
        target=str(section["target"]),
        drop=tuple(str(d) for d in (drop if isinstance(drop, list) else [drop])),
        test_size=test_size,
        seed=seed,
        task=task,
        backend=backend,
        estimator=str(section.get("estimator", DEFAULT_ESTIMATORS[task])),
        params=dict(section.get("params") or {}),
        torch=dict(torch),
        model_path=str(section.get("model_path", TrainParams.model_path)),
        facts_path=str(section.get("facts_path", TrainParams.facts_path)),
    )


def eval_params(root: Path, params_file: str = "params.yaml") -> EvalParams:
    section = _section(root, params_file, "evaluate")
    _check_keys(section, EvalParams, f"{params_file}:evaluate")
    slices = section.get("slice_by") or []
    return EvalParams(
        slice_by=tuple(str(s) for s in (slices if isinstance(slices, list) else [slices])),
        metrics_path=str(section.get("metrics_path", EvalParams.metrics_path)),
        plots_dir=str(section.get("plots_dir", EvalParams.plots_dir)),
    )


def get_trainer(backend: str) -> Trainer:
    if backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError(
                "train.backend is torch but PyTorch is not installed",
                fix="pip install 'mlci[torch]'",
            ) from None
        from mlci.training.torch import TorchTrainer

        return TorchTrainer()
    from mlci.training.sklearn import SklearnTrainer

    return SklearnTrainer()
