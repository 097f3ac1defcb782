"""Train once per change: record who trained which inputs, and find that training again.

A training is named by its key (:mod:`mlci.project.lineage`: the training stage's
``dvc.lock`` entry, as DVC keys its run-cache). After ``dvc repro --pull``
(:func:`mlci.project.repro.reproduce_cached`) the training stage either ran here or was
restored / already up to date. When it ran in a
trusted job (a CI job on the repository's own code: never a fork's), its MLflow run gets the
key and the lineage, and the outputs, DVC's run-cache and a small record (run, commit, PR) go
to the DVC remote, so any later job (a re-run, the merge commit, a squash or rebase) restores
the outputs instead of training, and can say whose training it reused. Across jobs a run is
found through a shared tracking server (by its key tag) or through that record on the remote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.ci import CIContext
from mlci.errors import DvcRemoteError, MlflowError
from mlci.project import lineage, modelfile, remote, repro
from mlci.registry import runs
from mlci.registry import tags as vocab
from mlci.settings.config import Settings


@dataclass(frozen=True)
class Training:
    """What this job knows about the training behind its outputs."""

    lineage: lineage.Lineage
    ran: bool = False  # the training stage's command ran in this job
    run_id: str | None = None  # the MLflow run in this job's store that carries the key
    reused: dict[str, Any] | None = None  # the record of the earlier training it reused
    notes: tuple[str, ...] = field(default_factory=tuple)

    def sentence(self) -> str:
        """One line for the report and the promotion note."""
        key = (self.lineage.key or "")[:12]
        if self.lineage.stage is None:
            return "no training stage found (declare the model to name one)"
        if self.ran:
            return f"trained in this job (stage {self.lineage.stage}, inputs {key})"
        r = self.reused or {}
        if r.get("run_id") or r.get("pr") or r.get("git_sha"):
            who = f"run {r['run_id']}" if r.get("run_id") else "a training"
            where = f" from PR #{r['pr']}" if r.get("pr") else ""
            if not where and r.get("git_sha"):
                where = f" on commit {str(r['git_sha'])[:7]}"
            return f"training reused: {who}{where} (same inputs)"
        return f"training reused: outputs of inputs {key} were already built (not trained here)"

    def facts(self) -> dict[str, Any]:
        """For the report's facts: ``training`` and ``lineage`` (plain data)."""
        return {
            "training": {
                "summary": self.sentence(),
                "ran": self.ran,
                "run_id": self.run_id,
                "reused": self.reused,
                "notes": list(self.notes),
            },
            "lineage": self.lineage.as_dict(),
        }


def may_write_remote(ctx: CIContext) -> bool:
    """Only a CI job on the repository's own code writes the remote: never a fork's, never a
    job that cannot tell (``fork_unknown``), never a local run."""
    return bool(ctx.event_name) and not ctx.from_fork and not ctx.fork_unknown


def file_metrics(root: Path, lin: lineage.Lineage) -> dict[str, float]:
    """Numeric metrics from the declared metrics files (JSON or YAML), flattened."""
    from mlci.project import pipeline
    from mlci.verdict.metrics import flatten, parse

    out: dict[str, float] = {}
    files: list[str] = []
    for art in lin.group("metrics"):
        if (root / art.path).is_dir():  # an output holding the declared files (DVCLive's)
            declared = pipeline.read(root).metrics
            files.extend(m for m in declared if pipeline.within(m, art.path) and m not in files)
        elif art.path not in files:
            files.append(art.path)
    for path in files:
        try:
            values = flatten(parse((root / path).read_bytes(), path))
        except Exception:
            continue
        prefix = "" if len(files) == 1 else f"{path}:"
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{prefix}{k}" if prefix and k in out else k] = float(v)
    return out


def _tags(lin: lineage.Lineage, ctx: CIContext, sha: str | None, trusted: bool) -> dict[str, str]:
    return vocab.training(lin, trusted=trusted, git_sha=sha, pr=ctx.pr_number)


def _facts_run(root: Path, settings: Settings) -> str | None:
    from mlci.training.facts import run_facts

    value = run_facts(root, settings).get("mlflow_run_id")
    return str(value) if value else None


def record(
    root: Path,
    settings: Settings,
    ctx: CIContext,
    reproduced: repro.Reproduced,
    *,
    sha: str | None,
    repo: Any = None,
) -> Training:
    """After the PR check's reproduce: the lineage from the new ``dvc.lock``; when the training
    ran here, its key on its MLflow run and (trusted jobs) its outputs, run-cache and record on
    the remote; when it did not, whose training was reused."""
    model = modelfile.find(root, settings)
    lin = lineage.read(root, model.path if model else None)
    if lin.stage is None or lin.key is None:
        return Training(lin)
    trusted = may_write_remote(ctx)
    if lin.stage not in reproduced.ran:
        found = remote.read_record(root, lin.key, settings.dvc_remote, repo)
        if found is None and settings.tracking_uri.startswith(("http://", "https://")):
            found = _record_from_server(settings, lin.key)
        return Training(lin, reused=found)
    notes: list[str] = []
    run_id = None
    if not ctx.from_fork:
        run_id = _track(root, settings, lin, _tags(lin, ctx, sha, trusted), sha)
    if trusted:
        try:
            remote.push_outputs(root, settings.dvc_remote, repo)
            entry = {
                "key": lin.key,
                "stage": lin.stage,
                "run_id": run_id,
                "pr": ctx.pr_number,
                "git_sha": sha,
                "tracking_uri": _public(settings.tracking_uri),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            remote.write_record(root, lin.key, entry, settings.dvc_remote, repo)
        except DvcRemoteError as exc:
            notes.append(f"this training is not shared with later jobs: {exc.message}")
    elif ctx.from_fork or ctx.fork_unknown:
        notes.append("a fork's training: nothing was pushed to the DVC remote or its run-cache")
    return Training(lin, ran=True, run_id=run_id, notes=tuple(notes))


def _public(uri: str) -> str:
    from mlci.registry.tracking import public_uri

    return public_uri(uri)


def _record_from_server(settings: Settings, key: str) -> dict[str, Any] | None:

    run = runs.find_run_by_key(settings.tracking_uri, settings.experiment, key)
    if run is None:
        return None
    return {"run_id": run.info.run_id, **vocab.origin(run.data.tags), "key": key}


def _track(
    root: Path, settings: Settings, lin: lineage.Lineage, tags: dict[str, str], sha: str | None
) -> str:
    """Tag the run the training stage logged in this job (mlci's trainer, ``mlci.api``), or
    record one for a project's own script; returns its id. Through the check's recorder when
    one runs (no MLflow import here), else in this process."""
    from mlci.training import recorder

    args: dict[str, Any] = {
        "root": str(root),
        "experiment": settings.experiment,
        "own": _facts_run(root, settings),
        "tags": tags,
        "name": f"{lin.stage}-{(sha or 'local')[:8]}",
        "params": dict(lin.params),
        "metrics": file_metrics(root, lin),
    }
    reply = recorder.request("track", settings.tracking_uri, args=args)
    if reply is not None:
        return str(reply["run_id"])
    return runs.track_run(settings.tracking_uri, **args)


@dataclass(frozen=True)
class Found:
    """The run promotion registers, and how it came to be."""

    run: Any
    training: Training


def for_promotion(
    root: Path,
    settings: Settings,
    ctx: CIContext,
    model: modelfile.ModelDecl,
    reproduced: repro.Reproduced,
    sha: str,
) -> Found:
    """The run of this commit's model: one that trained this commit, else the trusted run of a
    training with the same inputs (any commit: the PR's), else the run the training facts
    name, else a run recorded here from the restored outputs. Its model is logged from the
    declared files when the run has none."""
    from mlci.registry import tracking

    uri = settings.tracking_uri
    lin = lineage.read(root, model.path)
    ran = lin.stage is not None and lin.stage in reproduced.ran
    tags = _tags(lin, ctx, sha, trusted=True)
    run = runs.find_run(uri, settings.experiment, sha)
    reused: dict[str, Any] | None = None
    if run is None and lin.key and not ran:
        run = runs.find_run_by_key(uri, settings.experiment, lin.key)
        if run is not None:
            reused = {"run_id": run.info.run_id, **vocab.origin(run.data.tags)}
        else:
            reused = remote.read_record(root, lin.key, settings.dvc_remote)
    if run is None and not ran:
        own = _facts_run(root, settings)
        run = runs.get_run(uri, own) if own else None
    if run is None:
        tracking.configure(uri)
        exp = tracking.ensure_experiment(settings.experiment, uri, root)
        name = f"{lin.stage or 'model'}-{sha[:8]}"
        extra = vocab.recorded((reused or {}).get("run_id"))
        run_id = tracking.record_run(
            exp, uri, name, {**tags, **extra}, lin.params, file_metrics(root, lin)
        )
    else:
        run_id = str(run.info.run_id)
        tracking.tag_run(run_id, vocab.training(lin), uri)  # not this job's commit nor trust
    run = runs.get_run(uri, run_id)
    if run is not None and not runs.has_model(uri, run):
        logged = modelfile.log(root, model, run_id)
        facts = vocab.model_file(logged.kind, model.path, logged.backend, logged.task)
        tracking.tag_run(run_id, facts, uri)
        run = runs.get_run(uri, run_id)
    if run is None:
        raise MlflowError(
            f"the MLflow run for {model.path} vanished from {_public(uri)} while promoting",
            fix="re-run `mlci promote`",
        )
    training = Training(lin, ran=ran, run_id=run.info.run_id, reused=None if ran else reused)
    return Found(run, training)
