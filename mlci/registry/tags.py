"""The one vocabulary of mlci's MLflow tags: the name of every tag mlci writes on a run, a
model version or a registered model; one writer and one reader per fact; and the schema version
that lets a later rename still read what an earlier mlci wrote.

Every name starts with ``mlci.``; no other module spells one. Writers return full names with
string values (``None`` left out); readers take any tag mapping (a run's ``data.tags``, a
version's ``tags``). A run or version mlci writes carries ``mlci.schema`` (:data:`VERSION`);
one without it was written before the vocabulary had a version (:data:`UNVERSIONED`), and the
readers also take the names used then: the trainer's ``mlci.data.<path>`` for the hash of its
training data (now ``mlci.lineage.data.<path>``, the same name the promotion's ``dvc.lock``
lineage uses) and the first releases' ``mlci.previous_version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlci.registry.tracking import safe_key

if TYPE_CHECKING:
    from mlci.project.lineage import Lineage

PREFIX = "mlci."
SCHEMA = "mlci.schema"
VERSION = "1"  # what this mlci writes
UNVERSIONED = "0"  # what a run or version without ``mlci.schema`` was written with

# -- the commit -------------------------------------------------------------------------------
GIT_SHA = "mlci.git_sha"
BRANCH = "mlci.branch"
PR = "mlci.pr"
COMMIT_TIME = "mlci.commit_time"  # version: the commit's time, which orders candidates

# -- the training: its key and lineage (from dvc.lock), trust, how its run came to be ----------
TRAINING_KEY = "mlci.training_key"
TRAINING_STAGE = "mlci.training_stage"
LINEAGE = "mlci.lineage."  # + <group>.<path> -> md5; groups as in mlci.project.lineage
LINEAGE_GROUPS = ("data", "models", "metrics", "plots", "code")
TRUSTED = "mlci.trusted"  # "true": trained in a job on the repository's own code
RECORDED = "mlci.recorded"  # "true": mlci recorded the run (the training logged none here)
REUSED_RUN = "mlci.reused_run"  # the run of the training a recorded run reused
MODEL_FLAVOUR = "mlci.model_flavour"  # the model mlci logged from the declared files
MODEL_PATH = "mlci.model_path"
TRAINING = "mlci.training"  # version: one sentence, trained here or whose training reused

# -- the trainer (`mlci train`, mlci.api) ------------------------------------------------------
BACKEND = "mlci.backend"
TASK = "mlci.task"
DEVICE = "mlci.device"
GPU = "mlci.gpu"
SEED = "mlci.seed"
ENV = "mlci.env."  # + package -> version

# -- the promotion -----------------------------------------------------------------------------
RUN_ID = "mlci.run_id"
PROMOTED_BY = "mlci.promoted_by"
METRIC = "mlci.metric."  # + metric -> the value it was promoted with
PROMOTED = "mlci.promoted"  # "true": a candidate for champion (registered, files checked)

# -- rollback ----------------------------------------------------------------------------------
ROLLED_BACK = "mlci.rolled_back"  # "true": never champion again by convergence
ROLLBACK = "mlci.rollback."  # + field: who, when and why it was made champion again
ROLLBACK_FIELDS = ("by", "at", "reason", "from_version")
LAST_ROLLBACK = "mlci.last_rollback"  # registered model: the last rollback, one line

# -- release: the audit trail, the challenger's shadow ledger, how a version was released -----
HISTORY = "mlci.history."  # registered model: + entry key -> one alias move, as JSON
LEDGER = "mlci.ledger."  # challenger version: + window key -> one shadow evaluation, as JSON
RELEASED = "mlci.released"  # version: its release (when, by whom, approved by, forced), JSON

# -- names written before mlci.schema (read, never written) -----------------------------------
OLD_DATA = "mlci.data."  # + path -> md5: the trainer's training data, now LINEAGE + data.
OLD_PREVIOUS = "mlci.previous_version"  # the first releases' rollback target

NAMES = frozenset(
    {
        SCHEMA, GIT_SHA, BRANCH, PR, COMMIT_TIME, TRAINING_KEY, TRAINING_STAGE, TRUSTED,
        RECORDED, REUSED_RUN, MODEL_FLAVOUR, MODEL_PATH, TRAINING, BACKEND, TASK, DEVICE, GPU,
        SEED, RUN_ID, PROMOTED_BY, PROMOTED, ROLLED_BACK, LAST_ROLLBACK, OLD_PREVIOUS, RELEASED,
    }
)  # fmt: skip
FAMILIES = (LINEAGE, ENV, METRIC, ROLLBACK, OLD_DATA, HISTORY, LEDGER)
COMMIT_NAMES = (GIT_SHA, BRANCH, PR)
_MAX_VALUE = 5000  # MLflow's limit on a tag's value


def lineage_tag(group: str, path: str) -> str:
    return safe_key(f"{LINEAGE}{group}.{path}")


def metric_tag(name: str) -> str:
    return safe_key(f"{METRIC}{name}")


def env_tag(package: str) -> str:
    return safe_key(f"{ENV}{package}")


def rollback_tag(field: str) -> str:
    return f"{ROLLBACK}{field}"


def known(name: str) -> bool:
    """Whether ``name`` is in the vocabulary (this schema's or an older one's)."""
    if name in NAMES:
        return True
    if name.startswith(LINEAGE):
        return name[len(LINEAGE) :].split(".", 1)[0] in LINEAGE_GROUPS
    if name.startswith(ROLLBACK):
        return name[len(ROLLBACK) :] in ROLLBACK_FIELDS
    families = (ENV, METRIC, OLD_DATA, HISTORY, LEDGER)
    return any(name.startswith(f) and len(name) > len(f) for f in families)


def where(name: str, value: str) -> str:
    """An MLflow search filter clause: tag ``name`` equals ``value``."""
    return f"tags.`{name}` = {_quoted(value)}"


def named(model: str) -> str:
    """An MLflow search filter clause: the registered model is ``model``."""
    return f"name = {_quoted(model)}"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


# -- writers -----------------------------------------------------------------------------------


def _clean(tags: Mapping[str, Any]) -> dict[str, str]:
    return {
        safe_key(k): ("true" if v else "false") if isinstance(v, bool) else str(v)[:_MAX_VALUE]
        for k, v in tags.items()
        if v is not None
    }


def commit(git_sha: str | None, branch: str | None = None, pr: Any = None) -> dict[str, str]:
    """The commit a run trained or a version was promoted from."""
    return _clean({GIT_SHA: git_sha, BRANCH: branch, PR: pr})


def trainer_run(
    *,
    git_sha: str | None,
    branch: str | None,
    pr: Any,
    data: Mapping[str, str],
    environment: Mapping[str, Any],
    backend: str | None = None,
    task: str | None = None,
    device: str | None = None,
    gpu: str | None = None,
    seed: int | None = None,
) -> dict[str, str]:
    """A run a trainer logged (``mlci train``, ``mlci.api``): its commit, the hashes of the
    data it read (as lineage: the name the promotion's ``dvc.lock`` lineage uses), its
    backend, task, device, GPU, seed and package versions."""
    tags: dict[str, Any] = {SCHEMA: VERSION, **commit(git_sha, branch, pr)}
    tags.update({lineage_tag("data", p): h for p, h in data.items()})
    tags.update({BACKEND: backend, TASK: task, DEVICE: device, GPU: gpu, SEED: seed})
    tags.update({env_tag(k): v for k, v in environment.items()})
    return _clean(tags)


def gpu(name: str) -> dict[str, str]:
    return _clean({GPU: name})


def lineage(lin: Lineage) -> dict[str, str]:
    """A training's lineage: ``lineage.<group>.<path>`` -> md5, its key and stage."""
    tags: dict[str, Any] = {lineage_tag(a.group, a.path): a.md5 for a in lin.artifacts}
    return _clean({**tags, TRAINING_KEY: lin.key, TRAINING_STAGE: lin.stage})


def training(
    lin: Lineage, *, trusted: bool | None = None, git_sha: str | None = None, pr: Any = None
) -> dict[str, str]:
    """A training's run: its lineage and key, and (when this job trained it) whether the job
    was trusted, its commit and PR."""
    return {
        SCHEMA: VERSION,
        **lineage(lin),
        **_clean({TRUSTED: trusted}),
        **commit(git_sha, None, pr),
    }


def recorded(reused_run: str | None = None) -> dict[str, str]:
    """A run mlci recorded itself (the training logged none in this store)."""
    return _clean({RECORDED: True, REUSED_RUN: reused_run})


def model_file(
    flavour: str, path: str, backend: str | None = None, task: str | None = None
) -> dict[str, str]:
    """The model mlci logged into a run from the declared file, with the backend that loads
    it and its task where the file told."""
    return _clean({MODEL_FLAVOUR: flavour, MODEL_PATH: path, BACKEND: backend, TASK: task})


def carried(run_tags: Mapping[str, Any]) -> dict[str, str]:
    """What a version keeps of its run's tags: the training's and trainer's facts, with the
    lineage read through :func:`read_lineage` (older names too); not the run's commit."""
    keep = {
        k: v
        for k, v in run_tags.items()
        if known(k) and k not in (SCHEMA, *COMMIT_NAMES) and not k.startswith((LINEAGE, OLD_DATA))
    }
    for group, files in read_lineage(run_tags).items():
        keep.update({lineage_tag(group, path): md5 for path, md5 in files.items()})
    return _clean(keep)


def version(
    run_tags: Mapping[str, Any],
    *,
    git_sha: str,
    branch: str | None,
    pr: Any,
    run_id: str,
    promoted_by: str | None,
    commit_time: int | None,
    metrics: Mapping[str, Any],
    lin: Lineage,
    training_sentence: str,
) -> dict[str, str]:
    """A model version's tags at registration: the run's facts (:func:`carried`), then this
    commit, the metrics it was promoted with, its lineage (``dvc.lock``'s, over the run's) and
    the sentence that says how it was trained."""
    tags: dict[str, Any] = {**carried(run_tags), SCHEMA: VERSION}
    tags.update(commit(git_sha, branch, pr))
    tags.update({RUN_ID: run_id, PROMOTED_BY: promoted_by, COMMIT_TIME: commit_time})
    tags.update({metric_tag(k): v for k, v in metrics.items()})
    tags.update(lineage(lin))
    tags[TRAINING] = training_sentence
    return _clean(tags)


def candidate() -> dict[str, str]:
    """A version whose registration finished and whose files were found."""
    return {PROMOTED: "true"}


def rolled_back() -> dict[str, str]:
    """A candidate newer than a rollback's target: convergence never brings it back."""
    return {ROLLED_BACK: "true"}


def restored(*, by: str, at: str, reason: str, from_version: str) -> dict[str, str]:
    """The target of a rollback: a candidate again, with who, when, why and from which."""
    fields = {"by": by, "at": at, "reason": reason, "from_version": from_version}
    return {
        PROMOTED: "true",
        ROLLED_BACK: "false",
        **_clean({rollback_tag(k): v for k, v in fields.items()}),
    }


def last_rollback(before: str, after: str, *, by: str, at: str, reason: str) -> dict[str, str]:
    """The registered model's record of its last rollback, one line."""
    return _clean({LAST_ROLLBACK: f"{before}->{after} by {by} at {at}: {reason}"})


# -- readers -----------------------------------------------------------------------------------


def _get(tags: Mapping[str, Any] | None, name: str) -> str | None:
    value = (tags or {}).get(name)
    return None if value is None else str(value)


def schema(tags: Mapping[str, Any] | None) -> str:
    """The vocabulary version the tags were written with (:data:`UNVERSIONED` before one)."""
    return _get(tags, SCHEMA) or UNVERSIONED


def git_sha(tags: Mapping[str, Any] | None) -> str | None:
    return _get(tags, GIT_SHA)


def pr(tags: Mapping[str, Any] | None) -> str | None:
    return _get(tags, PR)


def training_key(tags: Mapping[str, Any] | None) -> str | None:
    return _get(tags, TRAINING_KEY)


def trusted(tags: Mapping[str, Any] | None) -> bool:
    return _get(tags, TRUSTED) == "true"


def backend(tags: Mapping[str, Any] | None) -> str | None:
    return _get(tags, BACKEND)


def task(tags: Mapping[str, Any] | None) -> str | None:
    return _get(tags, TASK)


def commit_time(tags: Mapping[str, Any] | None) -> int:
    try:
        return int(_get(tags, COMMIT_TIME) or 0)
    except ValueError:
        return 0


def promoted(tags: Mapping[str, Any] | None) -> bool:
    return _get(tags, PROMOTED) == "true"


def is_candidate(tags: Mapping[str, Any] | None) -> bool:
    """Promoted (a candidate for champion) and not rolled back."""
    return promoted(tags) and _get(tags, ROLLED_BACK) != "true"


def origin(tags: Mapping[str, Any] | None) -> dict[str, str | None]:
    """Where a training ran: its PR and commit (for the sentence of a reused training)."""
    return {"pr": pr(tags), "git_sha": git_sha(tags)}


def read_lineage(tags: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """``{group: {path: md5}}``; a run or version written before the schema also gives the
    trainer's ``mlci.data.<path>`` as data (the ``dvc.lock`` lineage wins where both are)."""
    out: dict[str, dict[str, str]] = {}
    for name, value in (tags or {}).items():
        if name.startswith(LINEAGE):
            group, _, path = name[len(LINEAGE) :].partition(".")
            if group in LINEAGE_GROUPS and path:
                out.setdefault(group, {})[path] = str(value)
    if schema(tags) == UNVERSIONED:
        for name, value in (tags or {}).items():
            if name.startswith(OLD_DATA) and len(name) > len(OLD_DATA):
                out.setdefault("data", {}).setdefault(name[len(OLD_DATA) :], str(value))
    return out


def training_data(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """The training data's paths and hashes, ``{path: md5}``."""
    return read_lineage(tags).get("data", {})


def read_metrics(tags: Mapping[str, Any] | None) -> dict[str, float]:
    """The metrics a version was promoted with (numbers only)."""
    out: dict[str, float] = {}
    for name, value in (tags or {}).items():
        if name.startswith(METRIC):
            try:
                out[name[len(METRIC) :]] = float(value)
            except (TypeError, ValueError):
                continue
    return out


def describe(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """mlci's tags for a reader, without the prefix, in this schema's names (older ones
    translated): ``git_sha``, ``lineage.data.<path>``, ``metric.<name>``..."""
    plain = {
        k: str(v)
        for k, v in (tags or {}).items()
        if known(k) and not k.startswith((LINEAGE, OLD_DATA))
    }
    for group, files in read_lineage(tags).items():
        plain.update({lineage_tag(group, path): md5 for path, md5 in files.items()})
    return {k.removeprefix(PREFIX): v for k, v in plain.items()}
