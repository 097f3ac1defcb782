"""The one legend of every plot mlci draws: the base in grey, this PR in blue.

The report's words (:data:`LEGEND`), the Mermaid charts and the PNGs rendered from DVC's
Vega-Lite specifications all take their colours from :data:`BASE` and :data:`PR`. DVC fills a
specification with its own revision names (the base SHA as given, and ``workspace`` for the work
tree) and its own palette; :func:`restyle` renames those revisions to the labels of
:class:`Legend` ("base (main@abc1234)", "this PR (abc1234)") and colours them as the report says.

Labels are made of data from git and the settings (a branch name, SHAs): they are reduced to
printable characters here (vl-convert aborts on a control character), and the whole
specification is cleaned again before it is rendered (:func:`mlci.plots.png.clean`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LABEL_LIMIT = 60  # characters of a branch name in a label
_REF = re.compile(r"[A-Za-z0-9._/-]+")  # a plain branch or tag name
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")


@dataclass(frozen=True)
class Colour:
    name: str  # what the report calls it
    hex: str


# Readable on GitHub's light (#ffffff) and dark (#0d1117) backgrounds: contrast >= 3:1 on both.
BASE = Colour("grey", "#6e7781")
PR = Colour("blue", "#1f6feb")
LEGEND = f"<sub>{BASE.name}: base · {PR.name}: this PR</sub>"


def printable(text: str, limit: int = LABEL_LIMIT) -> str:
    """``text`` with every character that is not printable (control characters, line breaks,
    format characters, lone surrogates) made a space, spaces collapsed, at most ``limit``
    characters."""
    kept = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(kept.split())[:limit]


@dataclass(frozen=True)
class Legend:
    """What the two revisions are called in a plot's legend."""

    base: str
    pr: str

    @classmethod
    def of(cls, base_name: str, base_sha: str, head_sha: str | None) -> Legend:
        """ "base (main@abc1234)" and "this PR (abc1234)": the base's branch (when it has a name
        that is not its SHA) and 7-character SHAs."""
        short = printable(base_sha, 7)
        name = printable(base_name)
        if not name or (_HEX.fullmatch(name) and base_sha.startswith(name)):
            base = f"base ({short})"
        elif _REF.fullmatch(name):
            base = f"base ({name}@{short})"
        else:  # e.g. a registry alias, "model@champion (v3)"
            base = f"base ({name}, {short})"
        head = printable(head_sha or "", 7)
        return cls(base, f"this PR ({head})" if head else "this PR")


def restyle(spec: Mapping[str, Any], revs: Mapping[str, str], legend: Legend) -> dict[str, Any]:
    """A copy of DVC's filled ``spec`` whose revisions (``revs``: DVC's name -> "base" or "pr")
    carry ``legend``'s labels, coloured :data:`BASE` and :data:`PR`, the base first."""
    label = {dvc: legend.base if rev == "base" else legend.pr for dvc, rev in revs.items()}
    data = spec.get("data")
    values = data.get("values") if isinstance(data, Mapping) else None
    rows = [_relabel(d, label) for d in values] if isinstance(values, list) else None
    present = {d.get("rev") for d in rows or () if isinstance(d, Mapping)}
    order = [x for x in (legend.base, legend.pr) if x in present] or [legend.base, legend.pr]
    style = _Style(label, order, [BASE.hex if x == legend.base else PR.hex for x in order])
    out = {key: style.walk(value, key) for key, value in spec.items() if key != "data"}
    if isinstance(data, Mapping):
        out["data"] = style.walk(data, "data") if rows is None else {**data, "values": rows}
    if rows is not None:  # the base's data first: drawn first, its facet on the left
        rows.sort(key=lambda d: not (isinstance(d, Mapping) and d.get("rev") == legend.base))
    return out


def _relabel(datum: Any, label: Mapping[str, str]) -> Any:
    """One datum of the data: its revision's label in place of DVC's name (its values are
    data, not specification: nothing else in it is restyled)."""
    rev = datum.get("rev") if isinstance(datum, Mapping) else None
    return {**datum, "rev": label.get(rev, rev)} if isinstance(rev, str) else datum


@dataclass(frozen=True)
class _Style:
    label: Mapping[str, str]  # DVC's revision name -> its label
    order: list[str]  # the labels present, base first
    colours: list[str]  # their colours, in that order

    def walk(self, node: Any, key: str) -> Any:
        """``node`` (found under ``key``) restyled: a datum's revision relabelled, a scale's
        domain too, and a channel of the revision ordered base first (and coloured, when it
        is a colour channel)."""
        if isinstance(node, list):
            return [self.walk(v, key) for v in node]
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "rev" and isinstance(v, str):  # a datum
                out[k] = self.label.get(v, v)
            elif k == "domain" and isinstance(v, list):
                out[k] = [self.label.get(x, x) if isinstance(x, str) else x for x in v]
            else:
                out[k] = self.walk(v, k)
        if out.get("field") == "rev":
            if isinstance(out.get("sort"), list):
                out["sort"] = list(self.order)
            if key in _COLOUR_CHANNELS:
                out["scale"] = {"domain": list(self.order), "range": list(self.colours)}
        return out


_COLOUR_CHANNELS = ("color", "fill", "stroke")
