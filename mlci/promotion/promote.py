"""After a merge: gate the commit's model against the champion, register it, move the
aliases, and publish the promotion note (also when a gate refused it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci import git
from mlci.ci import CIContext
from mlci.errors import ConfigError, GateFailed
from mlci.project import repro
from mlci.promotion import note as promotion_note
from mlci.registry import history, runs
from mlci.registry import tags as vocab
from mlci.report import deliver, publish
from mlci.settings.config import Settings
from mlci.verdict import metrics, outcome

OnStage = Callable[[str], None]


@dataclass(frozen=True)
class PromoteResult:
    """What a promotion did: ``promotion`` is None when a gate refused it (``refused``)."""

    promotion: Any | None
    comparison: metrics.Comparison
    git_sha: str
    markdown: str
    published: publish.Published
    refused: GateFailed | None = None
    not_judged: str | None = None  # metrics that got worse with no gate to refuse them


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


def _logged_run(uri: str, settings: Settings, sha: str) -> Any | None:
    """The run that trained commit ``sha`` when it logged its model itself, else None."""
    from mlci.registry.tracking import store_absent

    if store_absent(uri):
        return None  # no store, no run: said without loading MLflow (nothing to register)

    run = runs.find_run(uri, settings.experiment, sha)
    return run if run is not None and runs.has_model(uri, run) else None


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
    from mlci.project import modelfile
    from mlci.project.lineage import Lineage
    from mlci.registry import models as registry
    from mlci.training import reuse as trainings

    branch = git.branch(root)
    refusal = off_promote_branch(root, settings, ctx)
    if refusal is not None and not force:
        raise refusal
    sha = ctx.sha or git.head_sha(root)
    if ctx.pr_number is None:  # a push after a merge: the version still names its PR
        ctx = dataclasses.replace(ctx, pr_number=publish.merged_pr(settings, ctx, sha))
    uri = settings.tracking_uri
    model = modelfile.find(root, settings)
    logged = None if model is not None else _logged_run(uri, settings, sha)
    if logged is not None:  # a run of this commit logged its own model (mlci.api, own code)
        on_stage("find run")
        run, training = logged, trainings.Training(Lineage(), run_id=logged.info.run_id)
    else:
        model = model or modelfile.require(root, settings)  # said before any training
        on_stage("restore (dvc repro --pull: the run-cache first, training only new inputs)")
        reproduced = repro.reproduce_cached(root)
        on_stage("find run")
        found = trainings.for_promotion(root, settings, ctx, model, reproduced, sha)
        run, training = found.run, found.training
    if on_step is not None:
        on_step(registry.FOUND_RUN)
    on_stage("gate against champion")
    champion = registry.alias_version(uri, settings.model_name, registry.CHAMPION)
    base = runs.run_metrics(uri, champion.run_id) if champion is not None else None
    head = dict(run.data.metrics) or trainings.file_metrics(root, training.lineage)
    comparison = metrics.compare(
        base,
        head,
        settings.gates,
        base_rev=f"{registry.CHAMPION}" + (f" v{champion.version}" if champion is not None else ""),
    )
    facts = promotion_note.PromotionFacts(
        settings.model_name,
        sha,
        run.info.run_id,
        comparison,
        None if champion is None else str(champion.version),
        training=training.sentence(),
    )
    if comparison.failed:
        names = ", ".join(m.message for m in comparison.failed)
        refused = outcome.gate_failed(
            f"not promoted: the model does not hold up against the champion: {names}",
            fix="the champion stays; improve the model or relax the gate",
        )
        facts = dataclasses.replace(facts, refused=True)
        return _noted(settings, ctx, facts, None, refused, on_stage)
    on_stage("register")
    tags = vocab.version(
        run.data.tags,
        git_sha=sha,
        branch=branch,
        pr=ctx.pr_number,
        run_id=run.info.run_id,
        promoted_by=ctx.actor,
        commit_time=git.commit_time(root, sha),
        metrics=head,
        lin=training.lineage,
        training_sentence=training.sentence(),
    )
    why = history.Context(
        "promotion" if settings.release.strategy == "direct" else "promotion (challenger first)",
        actor=ctx.actor,
        git_sha=sha,
        pr=None if ctx.pr_number is None else str(ctx.pr_number),
        run_url=ctx.run_url,
    )
    p = registry.promote(
        uri,
        settings.model_name,
        run.info.run_id,
        sha,
        tags,
        on_step,
        strategy=settings.release.strategy,
        why=why,
    )
    facts = dataclasses.replace(
        facts,
        version=p.version,
        created=p.created,
        champion=p.champion,
        previous=p.previous,
        challenger=p.challenger,
        probation=settings.release.probation,
    )
    on_stage("model card")
    facts = dataclasses.replace(facts, card=_card(root, settings, ctx, facts, run, tags, head))
    return _noted(settings, ctx, facts, p, None, on_stage)


def _card(
    root: Path,
    settings: Settings,
    ctx: CIContext,
    facts: promotion_note.PromotionFacts,
    run: Any,
    tags: dict[str, str],
    head: dict[str, Any],
) -> str:
    """The model card logged into the version's run: its artifact path, or why it is not."""
    from mlci.errors import MlciError
    from mlci.promotion import card
    from mlci.training import explain

    role = "challenger" if facts.challenger == facts.version else "registered"
    role = "champion" if facts.champion == facts.version else role
    cf = card.CardFacts(
        model=settings.model_name,
        version=str(facts.version),
        role=role,
        git_sha=facts.git_sha,
        run_id=run.info.run_id,
        comparison=facts.comparison,
        pr=vocab.pr(tags),
        training=facts.training,
        data=vocab.training_data(tags),
        params={str(k): str(v) for k, v in (run.data.params or {}).items()},
        metrics={str(k): float(v) for k, v in head.items() if isinstance(v, (int, float))},
        size_bytes=card.model_size(settings.tracking_uri, run.info.run_id),
        card=settings.card,
        drivers=explain.drivers(root, settings),  # the work tree's model, as the PR check
    )
    try:
        return card.log(settings.tracking_uri, run.info.run_id, cf, root / ".mlci" / "card")
    except MlciError as exc:
        return f"not logged: {exc.one_line()}"


def _noted(
    settings: Settings,
    ctx: CIContext,
    facts: promotion_note.PromotionFacts,
    promotion: Any | None,
    refused: GateFailed | None,
    on_stage: OnStage,
) -> PromoteResult:
    on_stage("promotion note")
    markdown = promotion_note.promotion_note(
        settings.report_name, facts, marker=publish.promotion_marker(settings.report_name)
    )
    version = "" if promotion is None else str(promotion.champion)
    challenger = "" if promotion is None else str(promotion.challenger or "")
    outputs = {"model-version": version, "challenger-version": challenger}
    deliver.outputs(ctx, outputs)  # before the network, as every report
    published = publish.publish_promotion(settings, ctx, facts.git_sha, markdown)
    unjudged = promotion_note.not_judged(facts)
    return PromoteResult(
        promotion, facts.comparison, facts.git_sha, markdown, published, refused, unjudged
    )


def raise_for_promotion(result: PromoteResult) -> None:
    """A refused promotion is exit 4; then a note that could not be posted is exit 5."""
    if result.refused is not None:
        raise result.refused
    if result.published.error is not None:
        raise result.published.error
