"""The promotion note (``mlci promote``): what a merge did to the registry, rendered where
reviewers look. Pure: data in, text out; every string from data is inert."""

from __future__ import annotations

from dataclasses import dataclass

from mlci.limits import COMMENT_LIMIT
from mlci.markdown import code, fit, inert
from mlci.report.render import metrics_section
from mlci.verdict.metrics import Comparison
from mlci.verdict.outcome import Outcome, name_list, of_comparison


@dataclass(frozen=True)
class PromotionFacts:
    """What ``mlci promote`` found and did, for the note (plain data)."""

    model: str
    git_sha: str
    run_id: str
    comparison: Comparison
    champion_before: str | None
    version: str | None = None
    created: bool = False
    champion: str | None = None
    previous: str | None = None
    refused: bool = False
    training: str | None = None  # "training reused: run X from PR #n (same inputs)", ...
    challenger: str | None = None  # release strategy challenger: the version now in shadow
    probation: int = 3
    card: str | None = None  # the model card's artifact path (or why it was not logged)


def _unjudged(f: PromotionFacts) -> tuple[str, str] | None:
    """(how many and why, which) for the metrics the champion beat that no gate covers (with no
    gates at all, every metric whose name says which way is better); None when none did."""
    if f.refused or f.version is None or f.champion_before is None:
        return None
    worse = f.comparison.worsened
    if not worse:
        return None
    gated = of_comparison(f.comparison).outcome is not Outcome.REPORTED
    how = "no gate covers them" if gated else "no gates are configured"
    names = name_list([m.name for m in worse])
    return f"{len(worse)} metric(s) got worse than the champion and {how}", names


_GATE_THEM = "Gate them under `mlci.gates` to keep such a model from becoming champion."


def not_judged(f: PromotionFacts) -> str | None:
    """What a promotion did not judge, as one plain line (see :func:`_unjudged`)."""
    found = _unjudged(f)
    return None if found is None else f"Not judged: {found[0]}: {found[1]}. {_GATE_THEM}"


def promotion_note(
    report_name: str, f: PromotionFacts, marker: str = "", limit: int | None = COMMENT_LIMIT
) -> str:
    """The note as Markdown (pure): what happened, the versions, the commit, the run, and the
    gated metrics against the champion (the PR report's metrics table)."""
    model, short = code(f.model), code(f.git_sha[:7])
    was = f"v{inert(f.champion_before)}" if f.champion_before else "none"
    if f.refused or f.version is None:
        icon, status = "❌", "not promoted"
        stays = f"`champion` stays {was}" if f.champion_before else "there is still no `champion`"
        summary = f"{model} from {short} does not hold up against the champion: {stays}"
        rows = [("new version", "not registered"), ("champion", f"{was} (unchanged)")]
        rows.append(("previous", "unchanged"))
    else:
        version, champion = f"v{inert(f.version)}", f"v{inert(f.champion)}"
        if f.challenger is not None and f.challenger == f.version:
            icon, status = "🧪", "challenger"
            summary = (
                f"{model} {version} from {short} is now `challenger`; `champion` stays "
                f"{champion} until the challenger passes {f.probation} monitor window(s) "
                "in shadow and `mlci release` moves it"
            )
        elif f.champion == f.version:
            icon, status = "✅", "promoted"
            summary = f"{model} {version} from {short} is now `champion`"
        else:
            icon, status = "☑️", "registered"
            summary = f"{model} {version} is registered; `champion` stays {champion}"
            summary += ", a newer commit's model"
        moved = "" if champion == was else f" (was {was})"
        created = " (registered now)" if f.created else " (registered before)"
        rows = [("new version", version + created), ("champion", champion + moved)]
        rows.append(("previous", f"v{inert(f.previous)}" if f.previous else "none"))
        if f.challenger is not None:
            rows.append(("challenger", f"v{inert(f.challenger)} (in shadow)"))
    rows = [("model", code(f.model, cell=True)), *rows, ("commit", code(f.git_sha, cell=True))]
    rows += [("MLflow run", code(f.run_id, cell=True))]
    if f.training:
        rows += [("training", inert(f.training, 300))]
    if f.card:
        shown = code(f.card, 300, cell=True) if f.card.startswith("runs:/") else inert(f.card, 300)
        rows += [("model card", shown + (" (`mlci card`)" if f.card.startswith("runs:/") else ""))]
    head = (
        marker + "\n" if marker else ""
    ) + f"## {icon} {inert(report_name)} promotion: {status}\n\n"
    head += f"**{summary}.**\n"
    if unjudged := _unjudged(f):
        head += f"\n> [!WARNING]\n> Not judged: {unjudged[0]}: {inert(unjudged[1], 600)}. "
        head += f"{_GATE_THEM}\n"
    table = "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    gated = metrics_section(f.comparison).replace(
        "| metric | base | PR |", "| metric | champion | this commit |", 1
    )
    sections = [table, gated, "<sub>Generated by mlci promote.</sub>\n"]
    note = head + "\n" + "\n".join(sections)
    where = f"in the MLflow run {code(f.run_id)}, which has every metric of this commit"
    return note if limit is None else fit(note, limit, where)
