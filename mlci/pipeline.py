"""The PR check and the promotion, in order. Shared by ``mlci run`` and ``action.yml``.

    pull -> validate -> reproduce -> compare -> report -> publish
    promote (after merge) -> registry

Stages never print; they report progress through ``on_stage``. Whatever fails, the report is
rendered, written to disk and published before the error leaves this module.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci import data, drift, git, metrics, privacy, publish, report, trust, validation
from mlci.ci import CIContext
from mlci.config import Settings
from mlci.errors import (
    EXIT_DATA_INVALID,
    EXIT_GATE_FAILED,
    ConfigError,
    DataInvalid,
    GateFailed,
    MlciError,
    RepoError,
)

STAGES = ("pull", "validate", "reproduce", "compare", "report", "publish")
OnStage = Callable[[str], None]


@dataclass
class CheckState:
    """What the stages found so far; the report is made from whatever is here."""

    timings: dict[str, float] = field(default_factory=dict)
    pulled: data.PullResult | None = None
    validation: validation.ValidationReport | None = None
    comparison: metrics.Comparison | None = None
    drift: drift.DriftReport | None = None
    pii: privacy.PiiReport | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    roc: list[dict[str, float]] = field(default_factory=list)
    error: MlciError | None = None


@dataclass(frozen=True)
class CheckResult:
    verdict: report.Verdict
    markdown: str
    published: publish.Published
    state: CheckState


@contextmanager
def _timed(state: CheckState, name: str, on_stage: OnStage) -> Iterator[None]:
    on_stage(name)
    start = time.monotonic()
    try:
        yield
    finally:
        state.timings[name] = time.monotonic() - start


def base_rev(settings: Settings, ctx: CIContext, flag: str | None = None) -> str:
    return flag or settings.base or ctx.base_ref or "main"


def _reader(root: Path, sha: str, pipe: data.Pipeline) -> Callable[[str], bytes | None]:
    def read(path: str) -> bytes | None:
        found = git.show(root, sha, path)
        if found is None and path not in pipe.uncached:
            found = data.read_at_rev(root, path, sha)
        return found

    return read


def _params(paths: tuple[str, ...], read: Callable[[str], bytes | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in dict.fromkeys(paths):
        raw = read(path)
        if raw is not None:
            prefix = "" if path == "params.yaml" else f"{path}:"
            out.update({prefix + k: v for k, v in metrics.parse(raw, path).items()})
    return out


RegistryBase = tuple[dict[str, Any] | None, str | None, str]


def compare_with_base(
    root: Path, settings: Settings, rev: str, registry_base: RegistryBase | None = None
) -> metrics.Comparison:
    """Head metrics/params (work tree) against ``rev``'s, read without a checkout.

    ``rev`` is a git revision, or ``@ALIAS`` (``@champion``) for the registered model that
    alias points at: its training run's metrics, and the params of the commit it came from
    (``registry_base``, when the caller looked it up already).
    """
    pipe = data.read_pipeline(root)
    head = metrics.load_files(pipe.metrics, metrics.read_worktree(root))
    if head is None:
        raise ConfigError(
            f"no metrics on the PR: none of {', '.join(pipe.metrics) or 'no files'} exist",
            fix="declare metrics in dvc.yaml and run `dvc repro` (or `mlci run`)",
        )
    params_files = pipe.params or (
        (settings.params_file,) if (root / settings.params_file).exists() else ()
    )
    if rev.startswith("@"):
        base, sha, label = registry_base or _registry_base(root, settings, rev[1:])
    else:
        sha, label = git.resolve_base(root, rev), rev
        base = metrics.load_files(pipe.metrics, _reader(root, sha, pipe))
    base_params = _params(params_files, _reader(root, sha, pipe)) if sha else {}
    return metrics.compare(
        base,
        head,
        settings.gates,
        base_rev=label,
        base_sha=sha,
        base_params=base_params,
        head_params=_params(params_files, metrics.read_worktree(root)),
    )


def _registry_base(root: Path, settings: Settings, alias: str) -> RegistryBase:
    """Metrics of the model version ``alias`` points at, and its commit when git has it."""
    from mlci import registry
    from mlci.training.tracking import TAG_PREFIX

    version = registry.alias_version(settings.tracking_uri, settings.model_name, alias)
    if version is None:
        return None, None, f"{settings.model_name}@{alias}"
    base = registry.run_metrics(settings.tracking_uri, version.run_id)
    sha = (version.tags or {}).get(f"{TAG_PREFIX}git_sha")
    label = f"{settings.model_name}@{alias} (v{version.version})"
    return base, (sha if sha and git.fetch_commit(root, sha) else None), label


def run_facts(root: Path, settings: Settings) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Training facts and ROC points the example pipeline wrote, when present."""
    from mlci.training.base import eval_params, train_params

    try:
        facts_path = root / train_params(root, settings.params_file).facts_path
        roc_path = root / eval_params(root, settings.params_file).plots_dir / "roc.json"
    except ConfigError:
        facts_path, roc_path = root / "reports/train.json", root / "plots/roc.json"
    facts, roc = _json_file(facts_path), _json_file(roc_path)
    return (
        facts if isinstance(facts, dict) else {},
        roc if isinstance(roc, list) else [],
    )


def _json_file(path: Path) -> Any:
    """A JSON file a stage wrote, or None when it is absent or not JSON (the report goes on)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError, RecursionError):
        return None


def _table_at(root: Path, sha: str, path: str) -> Any | None:
    """A data file as it was at ``sha``: from git if tracked there, else through DVC."""
    import io

    raw = git.show(root, sha, path) or data.read_at_rev(root, path, sha)
    if raw is None:
        return None
    import pandas as pd

    buffer = io.BytesIO(raw)
    return pd.read_parquet(buffer) if path.endswith((".parquet", ".pq")) else pd.read_csv(buffer)


def check_data(
    root: Path, settings: Settings, base_sha: str | None
) -> tuple[validation.ValidationReport, drift.DriftReport | None, privacy.PiiReport]:
    """Schema validation, personal-data scan and drift against the base revision.

    Work is skipped where content hashes say the answer is known: a file identical to base
    has exactly zero drift, and a file scanned before keeps its findings, so a no-op check
    never loads the data.
    """
    report_ = validation.validate(root, settings.validate, settings.sensitive_columns)
    rows = {f.path: f.rows for f in report_.files}
    thresholds = drift.Thresholds.from_mapping(settings.drift)
    allow = sorted(str(c) for c in settings.pii.get("allow", []))
    cache = _Cache(root / ".mlci" / "pii.json")
    findings: list[privacy.Finding] = []
    drifts: list[drift.FileDrift] = []
    for path in settings.validate:
        md5 = data.file_md5(root / path)
        frame: list[Any] = []

        def head(path: str = path, frame: list[Any] = frame) -> Any:
            if not frame:
                frame.append(validation.read_table(root / path))
            return frame[0]

        key = f"{md5}:{','.join(allow)}"
        found = cache.get(key)
        if found is None:
            found = [dataclasses.asdict(f) for f in privacy.scan_frame(path, head(), allow)]
            cache.put(key, found)
        findings.extend(privacy.Finding(**{**f, "path": path}) for f in found)
        if base_sha is None:
            continue
        if data.base_md5(root, base_sha, path) == md5:
            n = rows.get(path, 0)
            drifts.append(drift.FileDrift(path, n, n, note="identical to base: no drift"))
            continue
        base = _table_at(root, base_sha, path)
        if base is None:
            drifts.append(drift.FileDrift(path, None, len(head()), note="new file: not on base"))
        else:
            drifts.append(drift.compare_frames(path, base, head(), thresholds))
    cache.save()
    pii = privacy.PiiReport(tuple(findings), bool(settings.pii.get("block", False)))
    drift_report = drift.DriftReport(tuple(drifts), thresholds) if base_sha else None
    return report_, drift_report, pii


class _Cache:
    """A small JSON cache under ``.mlci/`` (a broken file is an empty cache)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.dirty = False
        if path.exists():
            try:
                self.data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                self.data = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.dirty = True

    def save(self) -> None:
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, sort_keys=True), encoding="utf-8")


def verdict_of(state: CheckState) -> report.Verdict:
    if state.error is not None:
        return report.Verdict(
            "error", f"{state.error.title}: {state.error.one_line()}", state.error.exit_code
        )
    problems = []
    if state.validation is not None and not state.validation.ok:
        problems.append(f"data validation failed ({state.validation.failure_count} failing values)")
    if state.pii is not None and state.pii.found and state.pii.block:
        kinds = sorted({f"{f.kind} in {f.column}" for f in state.pii.findings})
        problems.append(f"personal data found ({', '.join(kinds)})")
    if state.drift is not None and state.drift.drifted and state.drift.thresholds.fail:
        cols = [c.column for f in state.drift.files for c in f.drifted]
        problems.append(f"data drifted ({', '.join(cols)})")
    if problems:
        return report.Verdict("data-invalid", "; ".join(problems), EXIT_DATA_INVALID)
    c = state.comparison
    if c is None:
        return report.Verdict("error", "no comparison was made", 1)
    if c.failed:
        names = ", ".join(m.name for m in c.failed)
        return report.Verdict(
            "failed", f"{len(c.failed)} gate(s) failed: {names}", EXIT_GATE_FAILED
        )
    if not c.gated:
        return report.Verdict("passed", "no gates are configured; metrics reported only")
    extra = "" if c.has_baseline else " (no baseline on base)"
    return report.Verdict("passed", f"all {len(c.gated)} gates passed{extra}")


def render(
    root: Path, settings: Settings, state: CheckState, head_sha: str | None
) -> tuple[report.Verdict, str]:
    verdict = verdict_of(state)
    inp = report.ReportInput(
        name=settings.report_name,
        verdict=verdict,
        comparison=state.comparison,
        validation=state.validation,
        drift=state.drift,
        pii=state.pii,
        pulled=state.pulled,
        facts=state.facts,
        timings=state.timings,
        head_sha=head_sha,
        roc=state.roc,
    )
    return verdict, report.render(inp, marker=publish.marker(settings.report_name))


def pr_check(
    root: Path,
    settings: Settings,
    ctx: CIContext,
    *,
    base: str | None = None,
    pull: bool = True,
    on_stage: OnStage = lambda _: None,
    save: Path | None = None,
) -> CheckResult:
    """The whole PR check. Whatever fails, the report is rendered, written and published; the
    verdict (``raise_for``) turns it into the exit."""
    state = CheckState()
    repo: Any = None  # one DVC Repo for pull and repro: its index is built once
    try:
        ctx = trust.guard(settings, ctx)
        data.read_pipeline(root)
        repo = data.open_repo(root)
        if pull:
            with _timed(state, "pull", on_stage):
                state.pulled = data.pull(root, settings.dvc_remote, repo=repo)
        rev = base_rev(settings, ctx, base)
        with _timed(state, "validate", on_stage):
            registered = _registry_base(root, settings, rev[1:]) if rev.startswith("@") else None
            base_sha = registered[1] if registered else git.resolve_base(root, rev)
            state.validation, state.drift, state.pii = check_data(root, settings, base_sha)
        if verdict_of(state).status != "data-invalid":
            with _timed(state, "reproduce", on_stage):
                data.reproduce(root, repo=repo)
            with _timed(state, "compare", on_stage):
                state.comparison = compare_with_base(root, settings, rev, registered)
    except MlciError as exc:
        state.error = exc
    finally:
        if repo is not None:
            repo.close()
    state.facts, state.roc = run_facts(root, settings)
    head = _head_sha(root, ctx)
    with _timed(state, "report", on_stage):
        verdict, markdown = render(root, settings, state, head)
    with _timed(state, "publish", on_stage):
        if save is not None:
            publish.save_artifact(save, settings, ctx, markdown, verdict)
        notes = annotations_of(root, state) if settings.check_run else ()
        published = publish.publish(settings, ctx, markdown, verdict, notes)
    return CheckResult(verdict, markdown, published, state)


def report_error(
    root: Path, error: MlciError, settings: Settings | None = None, ctx: CIContext | None = None
) -> Path:
    """The report of a check that failed before it could start (settings, event, guard):
    the error alone, on disk and in the job summary, so a failure never leaves nothing."""
    settings = settings or Settings(root=root)
    if ctx is None:
        import os

        ctx = CIContext(step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None)
    verdict, markdown = render(root, settings, CheckState(error=error), None)
    path = publish.write_report(settings, markdown, verdict)
    publish.to_step_summary(settings, ctx, markdown)
    return path


def annotations_of(root: Path, state: CheckState) -> list[Any]:
    """Check-run annotations: every validation failure and every failed gate."""
    from mlci.github import Annotation

    out = []
    if state.validation is not None:
        for f in state.validation.files:
            out += [
                Annotation(
                    f.path,
                    f"{x.count} rows fail {x.check} in column {x.column}",
                    "mlci data validation",
                )
                for x in f.failures
            ]
    if state.comparison is not None:
        try:
            where = data.read_pipeline(root).metrics[0]
        except (MlciError, IndexError):
            where = "dvc.yaml"
        out += [
            Annotation(where, m.message, f"mlci gate: {m.name}") for m in state.comparison.failed
        ]
    return out


def _head_sha(root: Path, ctx: CIContext) -> str | None:
    try:
        return ctx.head_sha or git.head_sha(root)
    except RepoError:
        return None


def raise_for(result: CheckResult) -> None:
    """Turn a finished check's verdict into its exit, after everything was published."""
    if result.state.error is not None:
        raise result.state.error
    v = result.verdict
    if v.status == "data-invalid":
        raise DataInvalid(v.summary, fix="see the report's data validation section")
    if v.status == "failed":
        raise GateFailed(v.summary, fix="see the report's failed gates")
    if result.published.error is not None:
        raise result.published.error


@dataclass(frozen=True)
class PromoteResult:
    """What a promotion did: ``promotion`` is None when a gate refused it (``refused``)."""

    promotion: Any | None
    comparison: metrics.Comparison
    git_sha: str
    markdown: str
    published: publish.Published
    refused: GateFailed | None = None


def promote_branch(settings: Settings, ctx: CIContext) -> str:
    """The branch promotions run on: the setting, else the repository's default branch (from
    the event), else ``main``. The action's ``promote: auto`` asks the same question."""
    return settings.promote_branch or ctx.default_branch or "main"


def off_promote_branch(root: Path, settings: Settings, ctx: CIContext) -> ConfigError | None:
    """Why this checkout may not promote (not on the promotion branch), or None."""
    branch = git.branch(root)
    target = promote_branch(settings, ctx)
    if ctx.ref == f"refs/heads/{target}" or (ctx.ref is None and branch == target):
        return None
    where = ctx.ref or branch or "a detached HEAD"
    return ConfigError(
        f"refusing to promote from {where}: promotion runs only on '{target}'",
        fix="merge first, set mlci.promote_branch, or pass --force to override",
    )


def promote(
    root: Path,
    settings: Settings,
    ctx: CIContext,
    *,
    force: bool = False,
    on_stage: OnStage = lambda _: None,
    on_step: Callable[[str], None] | None = None,
) -> PromoteResult:
    """After a merge: gate the commit's model against the champion, register it, move the
    aliases, then publish the promotion note (also when a gate refused it).

    ``on_step`` hears each completed step of the registry work (``registry.FOUND_RUN``, then
    those of ``registry.promote``); nothing listens in production.
    """
    from mlci import registry

    branch = git.branch(root)
    refusal = off_promote_branch(root, settings, ctx)
    if refusal is not None and not force:
        raise refusal
    sha = ctx.sha or git.head_sha(root)
    uri = settings.tracking_uri
    on_stage("find run")
    run = registry.find_run(uri, settings.experiment, sha)
    if run is None:
        # Outputs may be up to date from another commit's training; a champion must come
        # from this commit, so train it again here.
        on_stage("reproduce (no run for this commit yet: dvc repro --force)")
        data.reproduce(root, force=True)
        run = registry.find_run(uri, settings.experiment, sha)
    if run is None:
        raise ConfigError(
            f"no MLflow run trained commit {sha[:12]}, even after `dvc repro --force`",
            fix="make the pipeline's training stage log its run (`mlci train` does, "
            "or use mlci's tracking helpers in your own script)",
        )
    if on_step is not None:
        on_step(registry.FOUND_RUN)
    on_stage("gate against champion")
    champion = registry.alias_version(uri, settings.model_name, registry.CHAMPION)
    base = registry.run_metrics(uri, champion.run_id) if champion is not None else None
    head = dict(run.data.metrics)
    comparison = metrics.compare(
        base,
        head,
        settings.gates,
        base_rev=f"{registry.CHAMPION}" + (f" v{champion.version}" if champion is not None else ""),
    )
    facts = report.PromotionFacts(
        settings.model_name,
        sha,
        run.info.run_id,
        comparison,
        None if champion is None else str(champion.version),
    )
    if comparison.failed:
        names = ", ".join(m.message for m in comparison.failed)
        refused = GateFailed(
            f"not promoted: the model does not hold up against the champion: {names}",
            fix="the champion stays; improve the model or relax the gate",
        )
        facts = dataclasses.replace(facts, refused=True)
        return _noted(settings, ctx, facts, None, refused, on_stage)
    on_stage("register")
    run_tags = {
        k.removeprefix("mlci."): v
        for k, v in run.data.tags.items()
        if k.startswith("mlci.") and k not in ("mlci.git_sha", "mlci.branch", "mlci.pr")
    }
    tags = {
        **run_tags,
        "branch": branch,
        "pr": ctx.pr_number,
        "run_id": run.info.run_id,
        "promoted_by": ctx.actor,
        "commit_time": git.commit_time(root, sha),
    }
    tags.update({f"metric.{k}": v for k, v in head.items()})
    p = registry.promote(uri, settings.model_name, run.info.run_id, sha, tags, on_step)
    facts = dataclasses.replace(
        facts, version=p.version, created=p.created, champion=p.champion, previous=p.previous
    )
    return _noted(settings, ctx, facts, p, None, on_stage)


def _noted(
    settings: Settings,
    ctx: CIContext,
    facts: report.PromotionFacts,
    promotion: Any | None,
    refused: GateFailed | None,
    on_stage: OnStage,
) -> PromoteResult:
    on_stage("promotion note")
    markdown = report.promotion_note(
        settings.report_name, facts, marker=publish.promotion_marker(settings.report_name)
    )
    published = publish.publish_promotion(settings, ctx, facts.git_sha, markdown)
    if ctx.output:
        from mlci import github

        version = "" if promotion is None else str(promotion.champion)
        github.write_outputs(ctx.output, {"model-version": version})
    return PromoteResult(promotion, facts.comparison, facts.git_sha, markdown, published, refused)


def raise_for_promotion(result: PromoteResult) -> None:
    """A refused promotion is exit 4; then a note that could not be posted is exit 5."""
    if result.refused is not None:
        raise result.refused
    if result.published.error is not None:
        raise result.published.error
