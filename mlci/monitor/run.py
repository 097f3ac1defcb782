"""``mlci monitor``: is the champion still fit for the data it sees now?

    champion (registry) -> reference data (its lineage: commit + data hash, read without a
    checkout) -> snapshot -> drift (the PR check's statistics and thresholds) -> with labels,
    the champion's metrics on the snapshot against those recorded at promotion (gates) ->
    predict latency -> status -> report, issue, retraining PR or dispatch

Nothing here promotes: a breach opens (or updates) one issue per model and, per
``monitor.on_breach``, one retraining pull request that the normal PR check gates. Stages never
print; ``cli.monitor`` renders the result and ``raise_for`` turns it into the exit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlci.checks import frames
from mlci.checks.drift import compare_frames
from mlci.ci import CIContext
from mlci.errors import (
    ConfigError,
    DriftDetected,
    DvcRemoteError,
    MlciError,
    ModelDegraded,
    first_line,
)
from mlci.monitor import scoring, shadow
from mlci.monitor.result import Champion, MonitorResult, Status
from mlci.project import repository
from mlci.registry import runs
from mlci.settings.config import Settings
from mlci.settings.monitor import MonitorSettings
from mlci.verdict import metrics

OnStage = Callable[[str], None]
TABLES = (".csv", ".parquet", ".pq")  # the files a reference or a snapshot may be

# -- the stages -------------------------------------------------------------------------------


def champion(settings: Settings) -> Champion:
    """The model version ``champion`` points at, with the lineage its promotion recorded
    (read through the registry's one vocabulary, whichever way it was promoted)."""
    from mlci.registry import models as registry
    from mlci.registry import tags as vocab

    uri, name = settings.tracking_uri, settings.model_name
    mv = registry.alias_version(uri, name, registry.CHAMPION)
    if mv is None:
        raise ConfigError(
            f"model '{name}' has no '{registry.CHAMPION}' to monitor",
            fix="promote a model first (`mlci promote` after a merge)",
        )
    recorded = vocab.read_metrics(mv.tags) or runs.run_metrics(uri, mv.run_id)
    return Champion(
        name,
        str(mv.version),
        str(mv.run_id),
        vocab.git_sha(mv.tags),
        vocab.training_data(mv.tags),
        recorded,
        vocab.backend(mv.tags) or "sklearn",
        vocab.task(mv.tags),
    )


def task_of(champ: Champion, model: Any, notes: list[str]) -> str:
    """The champion's task: as recorded, else as its model tells (a scikit-learn estimator),
    else classification, said in a note."""
    if champ.task:
        return champ.task
    from mlci.project.modelfile import task_of as model_task

    found = model_task(getattr(model, "model", model))
    if found is None:
        notes.append(f"{champ.name} v{champ.version} records no task: judged as classification")
    return found or "classification"


def _frame(raw: bytes, path: str) -> Any:
    return frames.table_from_bytes(raw, path)


def reference(root: Path, champ: Champion, path: str | None = None) -> tuple[str, Any]:
    """The data the champion was trained on, as it was at its commit (DVC cache or remote),
    checked against the hash its lineage recorded."""
    import hashlib

    from mlci import git
    from mlci.project import data, remote

    if not champ.data or champ.git_sha is None:
        raise ConfigError(
            f"{champ.name} v{champ.version} has no lineage (its commit and training data)",
            fix="promote with mlci (`mlci promote`), which records them",
        )
    tables = [p for p in champ.data if p.endswith(TABLES)]
    path = path or next(iter(tables or champ.data))
    if path not in champ.data:
        raise ConfigError(
            f"{champ.name} v{champ.version} was not trained on {path}",
            fix=f"its training data: {', '.join(champ.data)}",
        )
    git.fetch_commit(root, champ.git_sha)
    raw = data.read_at(root, champ.git_sha, path)
    if raw is None or hashlib.md5(raw).hexdigest() != champ.data[path]:
        # an output CI reproduced and pushed that the commit's dvc.lock does not name (a
        # retraining PR changes the raw data's .dvc file, not the lock): by its hash
        raw = remote.read_object(root, champ.data[path]) or raw
    if raw is None:
        raise DvcRemoteError(
            f"cannot read {path} at {champ.git_sha[:12]} (the champion's training data)",
            fix="check that the commit is reachable and its data was `dvc push`ed",
        )
    if hashlib.md5(raw).hexdigest() != champ.data[path]:
        raise ConfigError(
            f"{path} at {champ.git_sha[:12]} does not match the hash the champion's lineage "
            f"recorded ({champ.data[path][:12]})",
            fix="the training data changed after training; promote again",
        )
    return path, _frame(raw, path)


def snapshot(root: Path, path: str) -> Any:
    """A CSV or Parquet file, or a directory of them; pulled first when DVC tracks it and the
    file is not in the work tree (an ingestion job's output, a `dvc import`)."""
    import pandas as pd

    target = root / path
    if not target.exists() and (root / f"{path}.dvc").exists():
        with repository.opened(root) as repo:
            try:
                repo.pull(targets=[str(target)])
            except Exception as exc:
                raise DvcRemoteError(
                    f"dvc pull {path} failed: {first_line(exc)}",
                    fix="check `dvc remote list` and that the snapshot was pushed",
                ) from None
    if target.is_dir():
        files = sorted(p for p in target.rglob("*") if p.suffix in TABLES and p.is_file())
        if not files:
            raise ConfigError(f"snapshot {path} holds no CSV or Parquet file", fix="check it")
        return pd.concat([_frame(p.read_bytes(), p.name) for p in files], ignore_index=True)
    if not target.is_file():
        raise ConfigError(
            f"snapshot {path} does not exist",
            fix="set monitor.snapshot (or --snapshot) to a file or directory in the repository",
        )
    return _frame(target.read_bytes(), path)


def features(model: Any, ref: Any, label: str | None, drop: tuple[str, ...]) -> Any:
    """The snapshot's (or reference's) model input: the training's one-hot encoding, columns
    in the order the model was fit with."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = frames.one_hot(ref, _not_inputs(label, drop)).columns
    return list(names)


def inferred_label(model: Any, ref: Any, drop: tuple[str, ...], notes: list[str]) -> str | None:
    """The one column of the training data the model does not take as input (it was fit on
    named columns, as scikit-learn records them; one-hot columns count for their source)."""
    found = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in found] if found is not None else []
    if not names:
        return None
    rest = [
        str(c)
        for c in ref.columns
        if str(c) not in names and str(c) not in drop
        and not any(n.startswith(f"{c}_") for n in names)
    ]  # fmt: skip
    if len(rest) != 1:
        return None
    notes.append(
        f"label: '{rest[0]}', the one training column the model does not take "
        "(set monitor.label to choose another)"
    )
    return rest[0]


def _not_inputs(label: str | None, drop: tuple[str, ...]) -> list[str]:
    return [*([label] if label else []), *drop]


def _inputs(frame: Any, columns: list[str], label: str | None, drop: tuple[str, ...]) -> Any:
    x = frames.one_hot(frame, _not_inputs(label, drop))
    return x.reindex(columns=columns, fill_value=0.0)


def trainer_hints(root: Path, settings: Settings) -> tuple[str | None, str | None, tuple[str, ...]]:
    """The training data, label and dropped columns ``train:`` names when mlci's trainer
    trains the project; none for a project's own training (its lineage names the data,
    ``monitor.label`` the label)."""
    from mlci.training.base import mlci_train_params

    tp = mlci_train_params(root, settings.params_file)
    return (tp.data, tp.target, tp.drop) if tp is not None else (None, None, ())


def check(
    root: Path,
    settings: Settings,
    ms: MonitorSettings,
    on_stage: OnStage = lambda _: None,
) -> MonitorResult:
    """Drift, accuracy and latency of the champion on the snapshot; raises on an error."""
    from mlci.training.base import get_trainer

    if not ms.snapshot:
        raise ConfigError(
            "no snapshot to monitor", fix="set mlci.monitor.snapshot or pass --snapshot PATH"
        )
    result = MonitorResult(Status.HEALTHY, snapshot=ms.snapshot)
    result.at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    on_stage("champion")
    champ = result.champion = champion(settings)
    on_stage("reference data")
    data, target, drop = trainer_hints(root, settings)
    _, ref = reference(root, champ, data if data in champ.data else None)
    on_stage("snapshot")
    snap = snapshot(root, ms.snapshot)
    result.rows = len(snap)
    on_stage("drift")
    result.thresholds = settings.drift
    result.drift = compare_frames(ms.snapshot, ref, snap, result.thresholds)
    on_stage("champion on the snapshot")
    model = scoring.load_model(settings, champ.name, champ.backend)
    label = ms.label or target or inferred_label(model, ref, drop, result.notes)
    result.labelled = label in snap.columns and bool(snap[label].notna().any())
    if label is None:
        result.notes.append("no label column is known (set monitor.label): accuracy not judged")
    elif label not in snap.columns:
        result.notes.append(f"no label column '{label}' in the snapshot: accuracy not judged")
    trainer = get_trainer(champ.backend)
    x = _inputs(snap, features(model, ref, label, drop), label, drop)
    gate = ms.latency
    head: dict[str, float] = {}
    task = champ.task or "classification"
    try:
        if result.labelled and label is not None:
            labelled = snap[label].notna().to_numpy()
            task = task_of(champ, model, result.notes)
            head = scoring.score(trainer, model, x[labelled], snap[label][labelled], task)
            gates = ms.gates if ms.gates is not None else settings.gates
            base, base_rev = champ.metrics, f"{champ.name} v{champ.version} at promotion"
            unknown = [g.metric for g in gates if g.metric in head and g.metric not in base]
            if unknown and label in ref.columns:  # its own metrics have other names
                rows = ref[ref[label].notna()]
                x_ref = _inputs(rows, list(x.columns), label, drop)
                seen = scoring.score(trainer, model, x_ref, rows[label], task)
                base = {**{m: seen[m] for m in unknown if m in seen}, **base}
                base_rev += f"; {', '.join(unknown)} scored now on its training data"
            result.comparison = metrics.compare(base, head, gates, base_rev=base_rev)
        result.latency = scoring.latency(trainer, model, x, gate.batch_rows, gate.batches)
    except MlciError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"{champ.name} v{champ.version} cannot predict on {ms.snapshot}: {first_line(exc)}",
            fix="set monitor.label to the snapshot's label column, so it is not an input",
        ) from None
    result.latency_breaches = gate.breaches(result.latency.p50_ms, result.latency.p95_ms)
    result.status = status_of(result)
    on_stage("challenger in shadow")
    labels = snap[label] if result.labelled and label is not None else None
    shadow.window(
        settings,
        result,
        snap,
        labels,
        head,
        task,
        (model, trainer, x),
        lambda m: _inputs(snap, features(m, ref, label, drop), label, drop),
        guarded=ms.on_breach == "rollback",
    )
    return result


def status_of(result: MonitorResult) -> Status:
    if result.error is not None:
        return Status.ERROR
    if (result.comparison is not None and result.comparison.failed) or result.latency_breaches:
        return Status.DEGRADED
    if result.drift is not None and result.drift.drifted:
        return Status.DRIFT
    return Status.HEALTHY


def run(
    root: Path,
    settings: Settings,
    ms: MonitorSettings,
    ctx: CIContext,
    on_stage: OnStage = lambda _: None,
) -> MonitorResult:
    """Check, then publish whatever came of it (an error too): report file, job summary,
    outputs, the living issue and, on a breach, the retraining PR or dispatch."""
    from mlci.monitor import publish as monitor_publish

    try:
        result = check(root, settings, ms, on_stage)
    except MlciError as exc:
        result = MonitorResult(Status.ERROR, snapshot=ms.snapshot or "", error=exc)
        result.at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if ms.on_breach == "rollback" and result.error is None:
        on_stage("release guard")
        shadow.guard(settings, result, ctx, result.served)
    on_stage("publish")
    monitor_publish.publish(root, settings, ms, ctx, result)
    return result


def raise_for(result: MonitorResult) -> None:
    """The exit: an error's own code; 4 degraded; 6 drift; then a publishing failure (5)."""
    if result.error is not None:
        raise result.error
    where = f" (issue: {result.issue_url})" if result.issue_url else ""
    if result.status is Status.DEGRADED:
        raise ModelDegraded(
            f"the champion degraded on {result.snapshot}: {result.summary}{where}",
            fix="review the retraining pull request or the issue; the champion stays",
        )
    if result.status is Status.DRIFT:
        raise DriftDetected(
            f"{result.snapshot} drifted from the champion's training data: {result.summary}{where}",
            fix="review the issue (and the retraining pull request, if any)",
        )
    if result.publish_error is not None:
        raise result.publish_error
