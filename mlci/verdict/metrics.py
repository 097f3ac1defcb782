"""Metrics and params of two revisions, and the gates that judge them.

``compare`` is pure: it takes flat dicts and gates and returns a ``Comparison``; the loaders
at the bottom read files (from the work tree, git or DVC) and are the only I/O here. An
ungated metric gets the direction its name says (``directions.direction_of``): it colours the
report's arrows and counts in the verdict of a check without gates, but never fails one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlci.errors import ConfigError
from mlci.settings.gates import Gate
from mlci.verdict.directions import direction_of

EPS = 1e-12

PASS, FAIL, NEW, INFO, SKIPPED = "pass", "fail", "new", "info", "skipped"


@dataclass(frozen=True)
class MetricDiff:
    name: str
    base: Any
    head: Any
    gate: Gate | None = None
    status: str = INFO
    message: str = ""
    inferred: str | None = None  # "higher"/"lower" from the name (see ``direction_of``)

    @property
    def direction(self) -> str | None:
        """Which way is better: the gate's, else the one the name says, else None."""
        return self.gate.direction if self.gate is not None else self.inferred

    @property
    def change(self) -> float | None:
        if is_number(self.base) and is_number(self.head):
            return float(self.head) - float(self.base)
        return None

    @property
    def rel_change(self) -> float | None:
        change = self.change
        if change is None or not self.base:
            return None
        return change / abs(float(self.base))

    @property
    def better(self) -> bool | None:
        """True when the change is an improvement by the gate's direction."""
        change = self.change
        if self.direction is None or change is None or abs(change) <= EPS:
            return None
        return change > 0 if self.direction == "higher" else change < 0


@dataclass(frozen=True)
class ParamDiff:
    name: str
    base: Any
    head: Any


@dataclass(frozen=True)
class Comparison:
    base_rev: str
    base_sha: str | None
    metrics: tuple[MetricDiff, ...]
    params: tuple[ParamDiff, ...] = ()
    has_baseline: bool = True
    notices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def gated(self) -> tuple[MetricDiff, ...]:
        return tuple(m for m in self.metrics if m.gate is not None)

    @property
    def failed(self) -> tuple[MetricDiff, ...]:
        return tuple(m for m in self.metrics if m.status == FAIL)

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def directed(self) -> tuple[MetricDiff, ...]:
        """Ungated metrics whose name says which way is better."""
        return tuple(m for m in self.metrics if m.gate is None and m.inferred is not None)

    @property
    def worsened(self) -> tuple[MetricDiff, ...]:
        """Ungated metrics that got worse by the direction their name says."""
        return tuple(m for m in self.directed if m.better is False)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists keep their index as a key part."""
    out: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(data, list) and any(isinstance(v, (Mapping, list)) for v in data):
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}{i}."))
    elif prefix:
        out[prefix[:-1]] = data
    return out


def judge(gate: Gate, base: Any, head: Any) -> tuple[str, str]:
    """A gate's status and a one-line reason with the numbers."""
    name = gate.metric
    if head is None:
        if gate.required:
            return FAIL, f"{name} vanished: the PR no longer produces it"
        return SKIPPED, f"{name} is missing on the PR (optional gate)"
    if not is_number(head):
        return FAIL, f"{name} is not a number on the PR: {head!r}"
    value = float(head)
    if math.isnan(value):
        return FAIL, f"{name} is NaN on the PR"
    if gate.min is not None and value < gate.min - EPS:
        return FAIL, f"{name} = {value:.6g} is below the minimum {gate.min:g}"
    if gate.max is not None and value > gate.max + EPS:
        return FAIL, f"{name} = {value:.6g} is above the maximum {gate.max:g}"
    if base is None:
        return NEW, f"{name} has no baseline: new metric, nothing to compare"
    if not is_number(base) or math.isnan(float(base)):
        return NEW, f"{name} has no numeric baseline ({base!r}); nothing to compare"
    worse_by = float(base) - value if gate.direction == "higher" else value - float(base)
    allowed = max(gate.abs_tol or 0.0, (gate.rel_tol or 0.0) * abs(float(base)))
    if worse_by > allowed + EPS:
        return FAIL, (
            f"{name} got worse by {worse_by:.6g} ({float(base):.6g} -> {value:.6g}); "
            f"{gate.direction} is better, allowed {allowed:.6g}"
        )
    if worse_by > EPS:
        return PASS, f"{name} worse by {worse_by:.6g}, within the allowed {allowed:.6g}"
    return PASS, f"{name} {float(base):.6g} -> {value:.6g}"


# The names of what the PR check measures itself (latency, model size, training cost: see
# mlci.insight.pseudo); no metrics file holds them.
PSEUDO_PREFIX = "mlci."


def compare(
    base: Mapping[str, Any] | None,
    head: Mapping[str, Any],
    gates: Sequence[Gate],
    *,
    base_rev: str = "base",
    base_sha: str | None = None,
    base_params: Mapping[str, Any] | None = None,
    head_params: Mapping[str, Any] | None = None,
) -> Comparison:
    """Diff two flat metric dicts under ``gates``; ``base=None`` means no baseline at all."""
    has_baseline = base is not None
    base = base or {}
    by_name = {g.metric: g for g in gates}
    names = list(dict.fromkeys([*head, *base, *by_name]))
    diffs = []
    notices = []
    if not has_baseline:
        notices.append(f"no baseline: {base_rev} has no metrics yet, gates compare nothing")
    if not gates:
        notices.append("no gates are configured: every metric is reported, none is judged")
    known = list(dict.fromkeys([*head, *base]))
    for name in names:
        gate = by_name.get(name)
        b, h = base.get(name), head.get(name)
        if gate is None:
            if not (is_number(b) or is_number(h)):
                continue
            diffs.append(MetricDiff(name, b, h, inferred=direction_of(name)))
            continue
        if name not in head and name not in base and name.startswith(PSEUDO_PREFIX):
            # latency, size, cost: measured by the PR check alone (mlci.insight), not here
            message = f"{name} is measured by the PR check only: not judged here"
            diffs.append(MetricDiff(name, None, None, gate, SKIPPED, message))
            continue
        if name not in head and name not in base and gate.required:
            raise ConfigError(
                f"gate '{name}' names a metric that neither {base_rev} nor the PR has",
                fix=f"{did_you_mean(name, known)} (a gate under mlci.gates is named by its metric)",
            )
        status, message = judge(gate, b, h)
        renamed = closest(name, list(head)) if h is None else []
        if renamed:
            message = f"{message}; {did_you_mean(name, renamed)}"
        diffs.append(MetricDiff(name, b, h, gate, status, message))
    return Comparison(
        base_rev,
        base_sha,
        tuple(diffs),
        diff_params(base_params or {}, head_params or {}),
        has_baseline,
        tuple(notices),
    )


def closest(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` names in ``known`` most like ``name``: a typo, or a renamed metric that
    keeps or extends the old name (``acc`` -> ``accuracy``)."""
    import difflib

    close = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
    low = name.lower()
    close += [
        k for k in known if k not in close and len(k) > 2 and (low in k.lower() or k.lower() in low)
    ]
    return close[:n]


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """'did you mean' the closest metric names to ``name``, or else the names there are."""
    close = closest(name, known)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    if not known:
        return "there are no metrics"
    shown = sorted(known)[:10]
    more = f" and {len(known) - len(shown)} more" if len(known) > len(shown) else ""
    return f"the metrics are {', '.join(shown)}{more}"


def to_json(c: Comparison) -> dict[str, Any]:
    """The comparison as plain data, like ``dvc metrics diff --json`` plus the verdicts."""
    return {
        "base_rev": c.base_rev,
        "base_sha": c.base_sha,
        "has_baseline": c.has_baseline,
        "passed": c.passed,
        "gates": len(c.gated),
        "failed": [m.name for m in c.failed],
        "notices": list(c.notices),
        "metrics": [
            {
                "name": m.name,
                "base": m.base,
                "head": m.head,
                "change": m.change,
                "rel_change": m.rel_change,
                "status": m.status,
                "gate": None if m.gate is None else m.gate.direction,
                "direction": m.direction,
                "better": m.better,
                "message": m.message,
            }
            for m in c.metrics
        ],
        "params": [{"name": p.name, "base": p.base, "head": p.head} for p in c.params],
    }


def diff_params(base: Mapping[str, Any], head: Mapping[str, Any]) -> tuple[ParamDiff, ...]:
    names = sorted(set(base) | set(head))
    return tuple(
        ParamDiff(n, base.get(n), head.get(n)) for n in names if base.get(n) != head.get(n)
    )


# ---- loading (the I/O edge) ----


def parse(text: bytes | str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if not where.endswith(".json") else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{where} is not valid JSON/YAML: {exc}",
            fix="make the stage write a JSON or YAML mapping",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping of metric names to values",
            fix='write e.g. {"accuracy": 0.91}',
        )
    return flatten(data)


def merge(files: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One flat dict over several files; a name in two files is prefixed by its file."""
    counts: dict[str, int] = {}
    for values in files.values():
        for k in values:
            counts[k] = counts.get(k, 0) + 1
    out: dict[str, Any] = {}
    for path, values in files.items():
        for k, v in values.items():
            out[k if counts[k] == 1 else f"{path}:{k}"] = v
    return out


def load_files(paths: Sequence[str], read: Callable[[str], bytes | None]) -> dict[str, Any] | None:
    """Flat metrics of ``paths`` using ``read``; None when none of the files exist."""
    found = {}
    for path in paths:
        raw = read(path)
        if raw is not None:
            found[path] = parse(raw, path)
    return merge(found) if found else None


def read_worktree(root: Path) -> Callable[[str], bytes | None]:
    def read(path: str) -> bytes | None:
        file = root / path
        return file.read_bytes() if file.is_file() else None

    return read
