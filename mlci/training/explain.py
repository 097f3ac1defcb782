"""The model a workflow explains and the rows it explains it on, shared by the PR check's "show
your math" (:mod:`mlci.check.insight`) and the model card at promotion
(:mod:`mlci.promotion.card`), so both measure the same model the same way.

The model is the declared one (:func:`mlci.project.modelfile.find`), loaded from its file:
mlci's own model file, or a scikit-learn (or any object with ``predict``) pickle or joblib
file. The rows are mlci's own held-out split for a model mlci's trainer made, else the table
``mlci.explain: {data, target}`` names, at most ``mlci.explain.max_rows`` of them (a seeded
sample). Unpickling a model runs its code: callers load only the repository's own outputs.

Nothing here raises for a model it cannot explain: :func:`guarded` turns any failure into
:class:`~mlci.insight.result.Unavailable`, the reason a section shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlci.errors import MlciError
from mlci.insight import importance
from mlci.insight.model import Model
from mlci.insight.result import Drivers, Unavailable
from mlci.settings.config import Settings

if TYPE_CHECKING:
    from mlci.project.modelfile import ModelDecl

Rows = tuple[Any, Any]  # features and labels
T = TypeVar("T")


def guarded(step: Callable[[], T]) -> T | Unavailable:
    """``step()``, or why it failed, as a section that is not available."""
    try:
        return step()
    except MlciError as exc:
        return Unavailable(exc.one_line())
    except Exception as exc:  # a section never breaks the workflow that shows it
        return Unavailable(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")


def budget(settings: Settings) -> float:
    """Seconds for one model's importance (and for the check's latency): a third of
    ``mlci.explain.seconds``."""
    return settings.explain.seconds / 3


def declared(root: Path, settings: Settings) -> ModelDecl | Unavailable:
    """The declared model, or why there is none to explain."""
    from mlci.project import modelfile

    try:
        decl = modelfile.find(root, settings)
    except MlciError as exc:
        return Unavailable(exc.one_line())
    if decl is None:
        return Unavailable(
            "the project declares no model (an `artifacts:` entry of `type: model` in "
            "dvc.yaml, `mlci.model`, or a training stage with one cached output)"
        )
    return decl


def work_tree_model(root: Path, path: str, label: str) -> Model | Unavailable:
    """The model at ``path`` in the work tree, named ``label``."""
    file = root / path
    if not file.exists():
        return Unavailable(f"{path} does not exist in the work tree")
    return load(root, file, label, size(file))


def size(path: Path) -> int:
    """Bytes of a model file, or of the files under a model directory."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def load(root: Path, file: Path, label: str, size: int) -> Model:
    """The model in ``file``: mlci's own model file, a scikit-learn (or any object with
    ``predict``) pickle or joblib file; anything else has a size and the reason it cannot be
    called."""
    from mlci.project import modelfile

    kind = modelfile.flavour(file)
    if kind != "pickle":
        what = {"mlflow": "an MLflow model directory", "torch": "a torch file"}.get(kind, "files")
        why = f"it is {what}; mlci calls models saved as pickle or joblib files"
        return Model(label, size, kind=what, why=why)
    import joblib

    from mlci.training.run import project_importable

    with project_importable(root):
        obj = joblib.load(file)
    return callable_model(label, size, obj)


def callable_model(label: str, size: int, obj: Any) -> Model:
    """``obj`` (an unpickled model file) as the measurements call it."""
    from mlci.training.backends import BACKENDS, get_trainer

    if isinstance(obj, dict) and "model" in obj and obj.get("backend") in BACKENDS:
        backend = str(obj["backend"])
        trainer, inner = get_trainer(backend), obj["model"]
        features = tuple(str(c) for c in obj.get("features") or ()) or None
        return Model(
            label,
            size,
            predict=lambda x: trainer.predict(inner, x),
            estimator=inner if backend == "sklearn" else None,
            features=features,
            kind=f"mlci {backend} model",
        )
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if not callable(getattr(obj, "predict", None)):
        return Model(label, size, kind=name, why=f"a {name} has no predict method")
    names = getattr(obj, "feature_names_in_", None)
    features = tuple(str(c) for c in names) if names is not None else None
    return Model(label, size, predict=obj.predict, estimator=obj, features=features, kind=name)


def evaluation_rows(
    root: Path, settings: Settings, *models: Model | Unavailable
) -> Rows | Unavailable:
    """The evaluation rows for ``models``, at most ``mlci.explain.max_rows``."""
    ex = settings.explain
    own = any(isinstance(m, Model) and m.kind.startswith("mlci ") for m in models)
    if ex.data is not None:
        from mlci.checks.frames import read_table

        if ex.target is None:
            return Unavailable("mlci.explain.data is set without mlci.explain.target")
        frame = read_table(root / ex.data, ex.data)
        if ex.target not in frame.columns:
            return Unavailable(f"mlci.explain.target '{ex.target}' is not a column of {ex.data}")
        x, y = frame.drop(columns=[ex.target]), frame[ex.target]
    elif own:
        from mlci.training.base import train_params
        from mlci.training.run import load_split

        split = load_split(root, train_params(root, settings.params_file))
        x, y = split.x_test, split.y_test
    else:
        return Unavailable(
            "a project's own model is measured on the rows `mlci.explain: {data, target}` names"
        )
    if len(x) > ex.max_rows:
        x = x.sample(n=ex.max_rows, random_state=importance.SEED)
        y = y.loc[x.index]
    return x, y


def drivers(root: Path, settings: Settings) -> Drivers | Unavailable:
    """What drives the predictions of the declared model in the work tree: its permutation
    importance on the evaluation rows, alone (the PR check's computation for the PR's model,
    within the same budget), or why it is not available."""
    return guarded(lambda: _drivers(root, settings))


def _drivers(root: Path, settings: Settings) -> Drivers | Unavailable:
    decl = declared(root, settings)
    if isinstance(decl, Unavailable):
        return decl
    model = work_tree_model(root, decl.path, decl.path)
    if isinstance(model, Unavailable):
        return model
    if model.predict is None:  # said as the loader says it (not "the model is a files")
        return Unavailable(model.why)
    rows = evaluation_rows(root, settings, model)
    if isinstance(rows, Unavailable):
        return rows
    x, y = rows
    seconds = budget(settings)
    scores = importance.permute(model, x, y, budget_s=seconds)
    if isinstance(scores, Unavailable):
        return scores
    alone = Unavailable("one model, measured alone")
    return importance.compare(alone, scores, rows=len(x), budget_s=seconds)
