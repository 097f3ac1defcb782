"""scikit-learn backend: any classifier or regressor by import path, params from params.yaml."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError
from mlci.training.backends import ModelFiles
from mlci.training.settings import DEFAULT_ESTIMATORS, TrainParams


def build_estimator(path: str, params: dict[str, Any], seed: int) -> Any:
    module_name, _, cls_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"train.estimator '{path}' cannot be imported",
            fix="use a full import path like sklearn.ensemble.RandomForestClassifier",
        ) from None
    accepted = inspect.signature(cls).parameters
    kwargs = dict(params)
    if "random_state" in accepted and "random_state" not in kwargs:
        kwargs["random_state"] = seed
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"train.params do not fit {cls_name}: {exc}", fix=f"check the parameter names of {path}"
        ) from None


def check_task(model: Any, params: TrainParams) -> None:
    """A classifier for ``task: regression`` (or the reverse) fails here, not deep in sklearn."""
    from sklearn.base import is_classifier, is_regressor

    wrong = is_classifier(model) if params.task == "regression" else is_regressor(model)
    if wrong:
        kind = "classifier" if params.task == "regression" else "regressor"
        other = "classification" if params.task == "regression" else "regression"
        raise ConfigError(
            f"train.estimator {params.estimator} is a {kind} but train.task is {params.task}",
            fix=f"use a {params.task} estimator such as {DEFAULT_ESTIMATORS[params.task]}, "
            f"or set train.task: {other}",
        )


class SklearnTrainer:
    name = "sklearn"

    def device(self) -> str:
        return "cpu"

    def describe(self, params: TrainParams) -> str:
        return params.estimator

    def fit(self, x: Any, y: Any, params: TrainParams) -> Any:
        model = build_estimator(params.estimator, dict(params.params), params.seed)
        check_task(model, params)
        try:
            model.fit(x, y)
        except ValueError as exc:
            raise ConfigError(
                f"{params.estimator} could not fit the data: {exc}",
                fix="check train.params and the data types",
            ) from None
        return model

    def predict_proba(self, model: Any, x: Any) -> Any:
        return model.predict_proba(x)

    def predict(self, model: Any, x: Any) -> Any:
        return model.predict(x)

    def export_model(self, model: Any, directory: Path) -> ModelFiles:
        """``model.pkl`` (cloudpickle) and the entries ``mlflow.sklearn.save_model`` writes."""
        import cloudpickle
        import sklearn

        (directory / "model.pkl").write_bytes(cloudpickle.dumps(model))
        return ModelFiles(
            flavor="sklearn",
            flavor_conf={
                "pickled_model": "model.pkl",
                "sklearn_version": sklearn.__version__,
                "serialization_format": "cloudpickle",
                "code": None,
                "skops_trusted_types": None,
            },
            pyfunc_conf={"model_path": "model.pkl", "predict_fn": "predict"},
            pip_requirements=(f"scikit-learn=={sklearn.__version__}",),
        )

    def log_model(self, model: Any, name: str) -> None:
        import mlflow.sklearn
        import sklearn

        mlflow.sklearn.log_model(
            model,
            name=name,
            serialization_format="cloudpickle",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )

    def load_model(self, uri: str) -> Any:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(uri)
