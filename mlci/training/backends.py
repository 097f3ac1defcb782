"""The one table of trainer backends, and the protocol each backend implements.

Adding a backend is one entry in :data:`BACKENDS` and one module: the table names the module
(imported on first use, so settings can be checked without importing scikit-learn or torch),
the package it needs, the ``train.<name>`` section it owns and how that section is checked.
Nothing else in mlci compares backend names.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlci.errors import ConfigError
from mlci.settings.gates import suggest
from mlci.training.settings import TrainParams, torch_params

MODEL_FILES = "mlci-model.json"  # what :meth:`Trainer.export_model` wrote, for the MLflow worker


@dataclass(frozen=True)
class ModelFiles:
    """A model serialised in an MLflow flavor's own layout, without importing MLflow.

    The MLflow worker process wraps these files in an ``MLmodel`` (the flavor's and the
    ``python_function`` entries) and logs them as the run's model, so the training process
    never pays for MLflow's import and the worker never imports the backend's library.
    """

    flavor: str  # "sklearn" or "pytorch": MLflow's flavor name (its loader is mlflow.<flavor>)
    flavor_conf: Mapping[str, Any]  # the flavor's MLmodel entry
    pyfunc_conf: Mapping[str, Any]  # python_function's entry, less env and loader
    pip_requirements: tuple[str, ...] = ()

    def save(self, directory: Path) -> None:
        (directory / MODEL_FILES).write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> ModelFiles:
        raw = json.loads((directory / MODEL_FILES).read_text(encoding="utf-8"))
        raw["pip_requirements"] = tuple(raw.get("pip_requirements") or ())
        return cls(**raw)


class Trainer(Protocol):
    """A backend. ``fit`` reads ``params.task``; evaluation calls ``predict_proba`` for
    classification (columns in ``model.classes_`` order) and ``predict`` for regression."""

    name: str

    def fit(self, x: Any, y: Any, params: TrainParams) -> Any: ...

    def predict_proba(self, model: Any, x: Any) -> Any: ...

    def predict(self, model: Any, x: Any) -> Any: ...

    def device(self) -> str: ...

    def describe(self, params: TrainParams) -> str:
        """What was trained (estimator or network), for the facts and the MLflow run."""
        ...

    def export_model(self, model: Any, directory: Path) -> ModelFiles:
        """Write ``model`` in its MLflow flavor's layout into ``directory`` (no MLflow)."""
        ...

    def log_model(self, model: Any, name: str) -> None:
        """Log ``model`` to the active MLflow run in this process (``mlci.api``)."""
        ...

    def load_model(self, uri: str) -> Any:
        """Load a model this backend logged (``runs:/...``, ``models:/name@champion``)."""
        ...


@dataclass(frozen=True)
class Backend:
    """One row of the table."""

    name: str
    trainer: str  # "module:Class", imported on first use
    requires: str  # the import the backend needs, checked first for a helpful error
    install: str  # the fix when it is missing
    section: str | None = None  # the ``train.<section>`` it owns
    check_section: Callable[[Any, str], object] | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)


BACKENDS: dict[str, Backend] = {
    "sklearn": Backend(
        "sklearn",
        "mlci.training.sklearn:SklearnTrainer",
        requires="sklearn",
        install="pip install scikit-learn",
        aliases=("scikit-learn",),
    ),
    "torch": Backend(
        "torch",
        "mlci.training.torch:TorchTrainer",
        requires="torch",
        install="pip install 'mlci[torch]'",
        section="torch",
        check_section=torch_params,
        aliases=("pytorch",),
    ),
}


def names() -> list[str]:
    return list(BACKENDS)


def backend(name: str, where: str = "train.backend") -> Backend:
    """The table's entry for ``name`` (or one of its aliases); exit 2 with a suggestion."""
    for entry in BACKENDS.values():
        if name == entry.name or name in entry.aliases:
            return entry
    raise ConfigError(f"{where} '{name}' is not a backend", fix=suggest(name, names()))


def check_sections(section: Mapping[str, Any], where: str) -> None:
    """Check every backend's own section that is present (also of backends not chosen)."""
    for entry in BACKENDS.values():
        if entry.section and entry.check_section and section.get(entry.section) is not None:
            entry.check_section(section[entry.section], f"{where}.{entry.section}")


def get_trainer(name: str) -> Trainer:
    """A trainer of the named backend; a missing library is exit 2 naming what to install."""
    entry = backend(name)
    try:
        importlib.import_module(entry.requires)
    except ImportError:
        raise ConfigError(
            f"train.backend is {entry.name} but {entry.requires} cannot be imported",
            fix=entry.install,
        ) from None
    module_name, _, cls_name = entry.trainer.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    trainer: Trainer = cls()
    return trainer
