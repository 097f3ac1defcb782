"""The model card of a promoted version ("show your math"): what it is, where it came from,
how it measures against the champion, across slices and in size, what drives its predictions,
who approved it, and what it is meant for. Written at every promotion as ``model-card.md`` and
``model-card.json`` into the version's MLflow run (``model-card/``), linked from the promotion
note, printed by ``mlci card``.

Pure rendering here (data in, text out, every string from data inert); logging and reading go
through MLflow's artifacts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.insight.importance import SEED
from mlci.insight.result import Drivers, Unavailable
from mlci.markdown import code, inert
from mlci.report.render import metrics_section
from mlci.settings.card import CardSettings
from mlci.verdict.metrics import Comparison

FOLDER = "model-card"
MARKDOWN, JSON = "model-card.md", "model-card.json"
MAX_PARAMS = 60
NOT_MEASURED = Unavailable("not measured")


@dataclass(frozen=True)
class CardFacts:
    model: str
    version: str
    role: str  # champion, challenger, registered
    git_sha: str
    run_id: str
    comparison: Comparison
    pr: str | None = None
    training: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)  # path -> md5 (lineage)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)  # the run's, slices included
    size_bytes: int | None = None
    approvals: tuple[str, ...] = ()
    card: CardSettings = field(default_factory=CardSettings)
    drivers: Drivers | Unavailable = NOT_MEASURED  # permutation importance


def to_json(f: CardFacts) -> dict[str, Any]:
    fair = {k: v for k, v in f.metrics.items() if k.startswith(("fairness.", "slices."))}
    return {
        "model": f.model,
        "version": f.version,
        "role": f.role,
        "git_sha": f.git_sha,
        "pr": f.pr,
        "run_id": f.run_id,
        "training": f.training,
        "data": dict(f.data),
        "params": dict(sorted(f.params.items())[:MAX_PARAMS]),
        "metrics": {
            m.name: {"value": m.head, "champion": m.base, "gate": m.status}
            for m in f.comparison.metrics
        },
        "slices_and_fairness": fair,
        "importance": _importance_json(f.drivers),
        "size_bytes": f.size_bytes,
        "approvals": list(f.approvals),
        "intended_use": f.card.intended_use or None,
        "limitations": f.card.limitations or None,
        "contact": f.card.contact or None,
    }


def render(f: CardFacts) -> str:
    rows = [
        ("model", code(f.model, cell=True)),
        ("version", f"v{inert(f.version)} ({inert(f.role)})"),
        ("commit", code(f.git_sha, cell=True)),
        ("pull request", f"#{inert(f.pr)}" if f.pr else "none recorded"),
        ("MLflow run", code(f.run_id, cell=True)),
    ]
    if f.training:
        rows.append(("training", inert(f.training, 300)))
    out = [f"# Model card: {inert(f.model)} v{inert(f.version)}", ""]
    out += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    out += ["## Intended use", "", _stated(f.card.intended_use, "intended_use"), ""]
    out += ["## Limitations", "", _stated(f.card.limitations, "limitations"), ""]
    if f.card.contact:
        out += ["## Contact", "", inert(f.card.contact, 300), ""]
    out += ["## Data", ""]
    if f.data:
        out += ["| file | version (DVC md5) |", "|---|---|"]
        out += [f"| {code(p, 120, cell=True)} | {code(h, cell=True)} |" for p, h in f.data.items()]
    else:
        out.append("No data versions recorded (no `dvc.lock` lineage for this training).")
    out += ["", "## Parameters", ""]
    if f.params:
        shown = sorted(f.params.items())[:MAX_PARAMS]
        out += ["| parameter | value |", "|---|---|"]
        out += [f"| {code(k, 80, cell=True)} | {code(v, 80, cell=True)} |" for k, v in shown]
        if len(f.params) > MAX_PARAMS:
            out.append(f"\n{len(f.params) - MAX_PARAMS} more in the MLflow run.")
    else:
        out.append("No parameters recorded.")
    section = metrics_section(f.comparison).replace(
        "| metric | base | PR |", "| metric | champion | this version |", 1
    )
    out += ["", "## Metrics against the champion", "", section.strip(), ""]
    out += ["## Slices and fairness", "", *_fairness(f.metrics), ""]
    out += ["## What drives its predictions", "", *_drivers(f.drivers), ""]
    out += ["## Size", ""]
    out.append(
        f"{f.size_bytes / 1e6:.3g} MB of model files."
        if f.size_bytes is not None
        else "Not available: the model files could not be listed."
    )
    out += ["", "## Approvals", ""]
    if f.approvals:
        out += [f"- {inert(a, 200)}" for a in f.approvals]
    elif f.role == "challenger":
        out.append("Pending: a challenger is approved when `mlci release` makes it champion.")
    else:
        out.append("None at promotion: the merged pull request's checks and review gated it.")
    out += ["", "<sub>Generated by mlci promote.</sub>", ""]
    return "\n".join(out)


def _stated(text: str, key: str) -> str:
    if text.strip():
        return inert(text, 2000)
    return f"Not stated: write `mlci.card.{key}` in params.yaml."


def _fairness(metrics: Mapping[str, float]) -> list[str]:
    gaps = {k: v for k, v in metrics.items() if k.startswith("fairness.")}
    if not gaps:
        return ["No slice metrics recorded (set `evaluate.slice_by` for mlci's own evaluation)."]
    out = ["| gap | value |", "|---|---|"]
    out += [f"| {code(k, 100, cell=True)} | {v:.4g} |" for k, v in sorted(gaps.items())]
    return out


def _importance_json(d: Drivers | Unavailable) -> dict[str, Any]:
    if isinstance(d, Unavailable):
        return {"features": [], "not_available": d.why}
    return {
        "features": [
            {"feature": f.name, "rank": f.head_rank, "importance": f.head, "std": f.head_std}
            for f in d.features
        ],
        "scoring": d.scoring,
        "rows": d.rows,
        "repeats": d.repeats,
        "seed": SEED,
        "not_available": None,
    }


def _drivers(d: Drivers | Unavailable) -> list[str]:
    if isinstance(d, Unavailable):
        return [f"Not available: {inert(d.why, 400)}."]
    out = [
        f"Permutation importance: how much {inert(d.scoring)} drops when one feature's values "
        f"are shuffled ({d.repeats} repeats, seed {SEED}, on {d.rows:,} evaluation rows, the "
        f"rows the PR check uses). Its top {len(d.features)}:",
        "",
        "| rank | feature | importance | ± std |",
        "|---:|---|---:|---:|",
    ]
    out += [
        f"| {f.head_rank or '—'} | {code(f.name, 100, cell=True)} | {_num(f.head)} "
        f"| {_num(f.head_std)} |"
        for f in d.features
    ]
    return out


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def log(uri: str, run_id: str, facts: CardFacts, workdir: Path) -> str:
    """Write the card into the run's artifacts; the artifact path of the Markdown."""
    from mlflow.tracking import MlflowClient

    from mlci.registry.tracking import unreachable

    folder = workdir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKDOWN).write_text(render(facts), encoding="utf-8")
    (folder / JSON).write_text(json.dumps(to_json(facts), indent=2) + "\n", encoding="utf-8")
    try:
        MlflowClient(uri).log_artifacts(run_id, str(folder), FOLDER)
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return f"runs:/{run_id}/{FOLDER}/{MARKDOWN}"


def read(uri: str, run_id: str, dest: Path) -> str | None:
    """The card logged into ``run_id``, or None when it has none."""
    import mlflow

    from mlci.registry.tracking import configure

    configure(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stdout is the card
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{FOLDER}/{MARKDOWN}", dst_path=str(dest)
        )
    except Exception:
        return None
    return Path(path).read_text(encoding="utf-8")


def model_size(uri: str, run_id: str) -> int | None:
    """Bytes of the files under the run's ``model`` artifact (None when they cannot be listed)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    total, todo = 0, ["model"]
    try:
        while todo:
            for item in client.list_artifacts(run_id, todo.pop()):
                if item.is_dir:
                    todo.append(item.path)
                else:
                    total += int(item.file_size or 0)
    except Exception:
        return None
    return total or None
