"""Drift of a data file against the same file at the base revision.

Numbers: population stability index (PSI, ten quantile bins of the base) and the two-sample
Kolmogorov-Smirnov statistic with its asymptotic p-value. Categories: new and vanished values
and the total variation distance between the two frequency tables. Identical data gives
exactly zero on every measure. Pure: frames in, a report out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlci.settings.datachecks import Thresholds

if TYPE_CHECKING:
    import numpy as np

EPS = 1e-6


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical
    score: float  # PSI for numbers, TVD for categories
    ks: float | None = None
    ks_pvalue: float | None = None
    new: tuple[str, ...] = ()
    vanished: tuple[str, ...] = ()
    drifted: bool = False


@dataclass(frozen=True)
class FileDrift:
    path: str
    base_rows: int | None
    rows: int
    columns: tuple[ColumnDrift, ...] = ()
    note: str | None = None

    @property
    def drifted(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.drifted)


@dataclass(frozen=True)
class DriftReport:
    files: tuple[FileDrift, ...] = field(default_factory=tuple)
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def drifted(self) -> bool:
        return any(f.drifted for f in self.files)


def psi(base: np.ndarray, head: np.ndarray, bins: int = 10) -> float:
    """PSI over quantile bins of ``base``; exactly 0.0 for identical samples."""
    import numpy as np

    edges = np.unique(np.quantile(base, np.linspace(0, 1, bins + 1)[1:-1]))
    b = np.bincount(np.searchsorted(edges, base, side="right"), minlength=len(edges) + 1)
    h = np.bincount(np.searchsorted(edges, head, side="right"), minlength=len(edges) + 1)
    p = b / b.sum()
    q = h / h.sum()
    if np.array_equal(p, q):
        return 0.0
    p, q = np.clip(p, EPS, None), np.clip(q, EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def ks(base: np.ndarray, head: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and its asymptotic p-value (no scipy import needed).

    Both empirical CDFs are compared at every distinct value of either sample: at the last
    of each run of equal values in one sorted sample, its own count is the position and the
    other's is found by one binary search (sorted keys: no random access)."""
    import numpy as np

    a, b = np.sort(base), np.sort(head)
    d = max(_ecdf_gap(a, b), _ecdf_gap(b, a))
    if d == 0.0:
        return 0.0, 1.0
    n = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, float(min(1.0, max(0.0, p)))


def _ecdf_gap(own: np.ndarray, other: np.ndarray) -> float:
    """The largest |F_own(x) - F_other(x)| over the distinct values x of ``own`` (sorted)."""
    import numpy as np

    last = np.flatnonzero(np.append(own[1:] != own[:-1], True))
    mine = (last + 1) / len(own)
    theirs = np.searchsorted(other, own[last], side="right") / len(other)
    return float(np.max(np.abs(mine - theirs)))


def tvd(base: Any, head: Any) -> tuple[float, tuple[str, ...], tuple[str, ...]]:
    import numpy as np

    p = base.astype(str).value_counts(normalize=True)
    q = head.astype(str).value_counts(normalize=True)
    keys = p.index.union(q.index)
    dist = 0.5 * float(np.abs(p.reindex(keys, fill_value=0) - q.reindex(keys, fill_value=0)).sum())
    new = tuple(sorted(set(q.index) - set(p.index)))[:10]
    vanished = tuple(sorted(set(p.index) - set(q.index)))[:10]
    return dist, new, vanished


def _many(values: Any, limit: int) -> bool:
    """Whether ``values`` hold more than ``limit`` distinct values: the first 10,000 usually
    tell, without hashing every row."""
    return bool(values.iloc[:10_000].nunique() > limit or values.nunique() > limit)


def compare_frames(path: str, base: Any, head: Any, t: Thresholds) -> FileDrift:

    columns = []
    for name in head.columns:
        if name not in base.columns or name in t.exclude:
            continue
        b, h = base[name].dropna(), head[name].dropna()
        if len(b) == 0 or len(h) == 0:
            continue
        numeric = b.dtype.kind in "if" and h.dtype.kind in "if" and _many(b, 10)
        if numeric:
            bv, hv = b.to_numpy(dtype=float), h.to_numpy(dtype=float)
            score = psi(bv, hv)
            d, pval = ks(bv, hv)
            drifted = score > t.psi or (d > t.ks and pval < t.ks_pvalue)
            columns.append(
                ColumnDrift(
                    str(name), "numeric", round(score, 6), round(d, 6), pval, drifted=drifted
                )
            )
        else:
            dist, new, vanished = tvd(b, h)
            columns.append(
                ColumnDrift(
                    str(name),
                    "categorical",
                    round(dist, 6),
                    new=new,
                    vanished=vanished,
                    drifted=dist > t.tvd or bool(new),
                )
            )
    columns.sort(key=lambda c: (not c.drifted, -c.score))
    return FileDrift(path, len(base), len(head), tuple(columns))
