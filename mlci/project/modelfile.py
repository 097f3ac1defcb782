"""The model a DVC project declares, and how it goes into MLflow.

Where the model is, in order: ``mlci.model``; an ``artifacts:`` entry of ``type: model``
(DVC's own model declaration); the single cached output of the training stage (the one stage
whose name in ``dvc.yaml`` says ``train``; ``featurize@train``, an entry of ``foreach``, does
not). The declarations are read as DVC resolves them
(:mod:`mlci.project.pipeline`: ``${}`` templating, ``vars``, ``foreach``), and nothing runs
before, so a project with nothing to register hears so in about a second, before anything
trains.

Logging it: an MLflow flavour where one is detected (a scikit-learn pickle or joblib file, a
whole torch module, mlci's own model bundle, a directory that already is an MLflow model), else
the files themselves as the model's artifacts with a flavour-less ``MLmodel``. Detection loads
the file (unpickling runs code): it runs only on the promotion branch, on the repository's
own outputs.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError, MlflowError, first_line
from mlci.project import pipeline
from mlci.settings.config import Settings

ARTIFACT = "model"  # the run's artifact path that `mlci promote` registers


@dataclass(frozen=True)
class ModelDecl:
    path: str
    stage: str | None  # the stage that produces it (its dvc.lock entry is the training key)
    source: str  # where the declaration came from, for messages


def find(
    root: Path, settings: Settings, project: pipeline.Project | None = None
) -> ModelDecl | None:
    """The declared model, or None when the project declares none."""
    project = project or pipeline.read(root)
    if settings.model:
        path = pipeline.posix(settings.model)
        return ModelDecl(path, _stage(project, path), "mlci.model")
    models = [a for a in project.artifacts if a.type == "model"]
    if models:
        art = models[0]
        return ModelDecl(art.path, _stage(project, art.path), f"dvc.yaml artifacts: {art.name}")
    trainers = [s for s in project.stages if "train" in s.declared.lower()]
    if len(trainers) == 1:
        st = trainers[0]
        outs = [o.path for o in st.outs if o.cache and not o.metric and not o.plot]
        if len(outs) == 1:
            return ModelDecl(outs[0], st.name, f"the single output of stage '{st.name}'")
    return None


def require(root: Path, settings: Settings, project: pipeline.Project | None = None) -> ModelDecl:
    """The declared model; a configuration error naming the ways to declare one."""
    found = find(root, settings, project)
    if found is None:
        raise ConfigError(
            f"nothing to register: {root / 'dvc.yaml'} declares no model (no `artifacts:` "
            "entry of `type: model`), mlci.model is not set, and no single training stage "
            "has exactly one cached output",
            fix="declare it in dvc.yaml (`artifacts: {my-model: {path: models/model.pkl, "
            "type: model}}`) or set `mlci.model: <path>` in params.yaml",
        )
    return found


def _stage(project: pipeline.Project, path: str) -> str | None:
    stage = project.producer(path)
    return None if stage is None else stage.name


def flavour(path: Path) -> str:
    """A cheap guess from the bytes: mlflow, torch, pickle, or files."""
    if path.is_dir():
        return "mlflow" if (path / "MLmodel").is_file() else "files"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any(n.endswith("data.pkl") for n in z.namelist()):
                return "torch"
        return "files"
    with path.open("rb") as fh:
        head = fh.read(2)
    return "pickle" if head[:1] == b"\x80" else "files"


@dataclass(frozen=True)
class Logged:
    """What logging a model file found: its flavour, and where the object tells, the backend
    that loads it and its task (so the monitor never has to assume them)."""

    kind: str
    backend: str | None = None
    task: str | None = None


def task_of(obj: Any) -> str | None:
    """``classification`` or ``regression`` for a scikit-learn estimator; None otherwise."""
    module = type(obj).__module__ or ""
    if not module.startswith("sklearn") and not hasattr(obj, "_estimator_type"):
        return None
    from sklearn.base import is_classifier, is_regressor

    if is_regressor(obj):
        return "regression"
    return "classification" if is_classifier(obj) else None


def log(root: Path, model: ModelDecl, run_id: str) -> Logged:
    """Log the model's files into MLflow run ``run_id`` under ``model``."""
    path = root / model.path
    if not path.exists():
        raise ConfigError(
            f"the model {model.path} ({model.source}) does not exist after `dvc repro`",
            fix="check that the training stage writes it, or fix the declaration",
        )
    import mlflow

    kind = flavour(path)
    obj: Any = None
    if kind == "pickle":
        kind, obj = _unpickled(path)
    elif kind == "torch":
        kind, obj = _torch(path)
    try:
        if kind in ("sklearn", "torch", "mlci-sklearn", "mlci-torch"):
            with mlflow.start_run(run_id=run_id):
                _log_object(kind, obj)
        else:
            _log_files(path, run_id, kind)
    except MlflowError:
        raise
    except Exception as exc:
        raise MlflowError(
            f"MLflow could not log the model {model.path}: {first_line(exc)}",
            fix="check the artifact store is writable; run with --debug for the cause",
        ) from exc
    if kind in ("sklearn", "mlci-sklearn"):
        return Logged(kind, "sklearn", task_of(obj))
    return Logged(kind)


def _unpickled(path: Path) -> tuple[str, Any]:
    try:
        import joblib

        obj = joblib.load(path)  # a plain pickle too
    except Exception:
        return "files", None
    if isinstance(obj, dict) and "model" in obj and obj.get("backend") in ("sklearn", "torch"):
        return f"mlci-{obj['backend']}", obj["model"]
    module = type(obj).__module__ or ""
    return ("sklearn", obj) if module.startswith("sklearn") else ("files", None)


def _torch(path: Path) -> tuple[str, Any]:
    try:
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return "files", None
    return ("torch", obj) if isinstance(obj, torch.nn.Module) else ("files", None)


def _log_object(kind: str, obj: Any) -> None:
    if kind in ("sklearn", "mlci-sklearn"):
        import mlflow.sklearn
        import sklearn

        mlflow.sklearn.log_model(
            obj,
            name=ARTIFACT,
            serialization_format="cloudpickle",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    else:
        import mlflow.pytorch
        import torch

        mlflow.pytorch.log_model(
            obj,
            name=ARTIFACT,
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )


def _log_files(path: Path, run_id: str, kind: str) -> None:
    """The files as they are, with a flavour-less ``MLmodel`` unless they are an MLflow model."""
    import mlflow
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="mlci-model-") as tmp:
        out = Path(tmp) / ARTIFACT
        if path.is_dir():
            shutil.copytree(path, out)
        else:
            out.mkdir()
            shutil.copy2(path, out / path.name)
        if kind != "mlflow":
            Model(run_id=run_id, artifact_path=ARTIFACT).save(str(out / "MLmodel"))
        MlflowClient(mlflow.get_tracking_uri()).log_artifacts(run_id, str(out), ARTIFACT)
