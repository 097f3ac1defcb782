"""Which way is better, read from a metric's name. Pure.

A name is split into tokens on ``.``, ``/``, ``_``, ``-``, ``@``, spaces and camelCase
(``val_loss``, ``test/accuracy``, ``eval.f1_macro``, ``valLoss``, ``roc_auc.test``). A token
that names a quality (``loss``, ``mae``, ... lower; ``accuracy``, ``f1``, ``dice``, ... higher;
also two tokens joined, ``log_loss``, ``roc_auc``, ``avg_prec``) gives the direction; a name
whose tokens disagree, or that has none of them, stays unclassified (None). A name whose last
token is ``step``, ``epoch``, ``timestamp``, ... is a counter, never a quality; one whose last
token is ``gap``, ``disparity``, ``drop``, ... is a distance, better lower.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LOWER = _words(
    "loss losses error errors err mae mse rmse rmsle msle mape smape mdape wer cer ter "
    "perplexity ppl nll logloss brier hinge ece mce fpr fnr far frr eer fid kid lpips "
    "logloss crossentropy xent bpb bpc bpd latency regret"
)
HIGHER = _words(
    "accuracy acc precision prec recall f1 f2 fbeta fscore auc auroc rocauc prauc ap avgprec "
    "averageprecision map dice iou miou jaccard r2 bleu rouge meteor chrf bertscore ndcg mrr "
    "hitrate specificity sensitivity tpr tnr npv ppv kappa mcc psnr ssim top1 top5 "
    "pearson spearman reward"
)
COUNTERS = _words("step steps epoch epochs timestamp timestamps iteration iterations iter iters")
# a last token that measures a distance between groups or runs: smaller is better whatever
# it is the distance of (``fairness.sex.accuracy_gap``, ``auc_disparity``, ``accuracy_drop``)
DISTANCES = _words("gap gaps disparity disparities drop degradation")

_SPLIT = re.compile(r"[._/:@\-\s]+")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def tokens(name: str) -> list[str]:
    """``"eval.f1_macro"`` -> ``["eval", "f1", "macro"]``; ``"valLoss"`` -> ``["val", "loss"]``.

    Digits stay with the letters before them (``f1``, ``r2``, ``map50``). The file part of a
    ``file:key`` name (a key two metric files share) is left out."""
    out: list[str] = []
    for part in _SPLIT.split(name.rsplit(":", 1)[-1]):
        if not part:
            continue
        if part.islower() or part.isupper() or part.isdigit():
            out.append(part.lower())
            continue
        words = _CAMEL.findall(part)
        merged: list[str] = []
        for w in words:
            if w.isdigit() and merged:
                merged[-1] += w
            else:
                merged.append(w)
        out.extend(w.lower() for w in merged)
    return out


def _direction(token: str) -> str | None:
    for word in (token, token.rstrip("0123456789")):
        if word in LOWER:
            return "lower"
        if word in HIGHER:
            return "higher"
    return None


def direction_of(name: str) -> str | None:
    """``"higher"`` or ``"lower"`` when the name says which way is better, else None."""
    toks = tokens(name)
    if not toks or toks[-1] in COUNTERS:
        return None
    if len(toks) > 1 and toks[-1] in DISTANCES:
        return "lower"
    found = {_direction(t) for t in toks}
    found |= {_direction(a + b) for a, b in itertools.pairwise(toks)}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def is_counter(name: str) -> bool:
    """``step``, ``train/epoch``, ``timestamp``: a count of progress, not a quality."""
    toks = tokens(name)
    return bool(toks) and toks[-1] in COUNTERS


_PLAIN = re.compile(r"[A-Za-z0-9_.\-/:]{1,100}")


def suggest_gates(names: Iterable[str]) -> dict[str, str]:
    """``{metric: direction}`` for every name that says its direction (slices left out)."""
    out: dict[str, str] = {}
    for name in names:
        direction = direction_of(name)
        if direction is not None and not name.startswith("slices."):
            out[name] = direction
    return out


def gates_yaml(gates: dict[str, str], indent: str = "  ", limit: int = 25) -> list[str]:
    """A ready-to-paste ``gates:`` block (lines, without the ``mlci:`` parent).

    Only plain names are written (letters, digits, ``_ . - / :``), so a line can never carry
    markup; a name with ``:`` is quoted for YAML. At most ``limit`` gates."""
    import json

    plain = [(n, d) for n, d in gates.items() if _PLAIN.fullmatch(n)]
    lines = [f"{indent}gates:"]
    for name, direction in plain[:limit]:
        key = json.dumps(name) if ":" in name or name[0] in "-?" else name
        lines.append(f"{indent}  {key}: {direction}")
    if len(plain) > limit:
        lines.append(f"{indent}  # ... and {len(plain) - limit} more (`mlci init` writes all)")
    return lines
