"""The ``train:`` and ``evaluate:`` params as they load from ``params.yaml``.

The types live in :mod:`mlci.training.settings` and the backends in
:mod:`mlci.training.backends`; both are re-exported here for existing callers. Backend modules
import neither this module nor each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlci.errors import ConfigError
from mlci.settings.config import load_yaml
from mlci.training.backends import BACKENDS, Trainer, backend, get_trainer
from mlci.training.backends import check_sections as _check_sections
from mlci.training.settings import (
    DEFAULT_ESTIMATORS,
    TASKS,
    EvalParams,
    TorchParams,
    TrainParams,
    torch_params,
    typed_eval,
    typed_train,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_ESTIMATORS",
    "TASKS",
    "EvalParams",
    "TorchParams",
    "TrainParams",
    "Trainer",
    "eval_params",
    "get_trainer",
    "mlci_train_params",
    "torch_params",
    "train_params",
]


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


def train_params(root: Path, params_file: str = "params.yaml") -> TrainParams:
    section = _section(root, params_file, "train")
    where = f"{params_file}:train"
    entry = backend(str(section.get("backend", "sklearn")), f"{where}.backend")
    params = typed_train(section, where, entry.name)
    _check_sections(section, where)
    return params


def eval_params(root: Path, params_file: str = "params.yaml") -> EvalParams:
    return typed_eval(_section(root, params_file, "evaluate"), f"{params_file}:evaluate")


def mlci_train_params(root: Path, params_file: str = "params.yaml") -> TrainParams | None:
    """mlci's trainer's ``train:`` params when mlci's trainer trains the project (a stage runs
    ``mlci train``, or, with no pipeline to tell, a ``train:`` section is there); None when the
    project trains itself, whose own ``train:`` section (if any) is not mlci's to read."""
    from mlci.errors import MlciError
    from mlci.project import pipeline

    try:
        stages = pipeline.read(root).stages
    except MlciError:
        stages = ()
    if stages:
        if not any(_runs_mlci_train(s.cmd) for s in stages):
            return None
    else:
        doc = load_yaml(root / params_file) if (root / params_file).is_file() else None
        if not isinstance(doc, dict) or doc.get("train") is None:
            return None
    return train_params(root, params_file)


def _runs_mlci_train(cmd: str) -> bool:
    import re

    return re.search(r"(^|[\s;&|(])(mlci|-m mlci)\s+train(\s|$)", cmd) is not None
