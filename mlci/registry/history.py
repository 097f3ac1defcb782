"""The audit trail: every move of every alias of a model (``champion``, ``previous``,
``challenger``), append-only, in the registry itself.

Each move is one registered-model tag (``mlci.history.<key>``) holding JSON: when, which alias,
from which version to which, the commit and PR, who (the actor), who approved, why, and the
workflow run. Writers never rewrite an entry, so concurrent jobs cannot erase each other's.

Two rules make the trail complete and free of duplicates whatever fails:

- a writer records each move it made right after making it (``note``);
- every command that moves aliases ends with ``reconcile``: where an alias's last recorded
  target is not where the alias points (a job killed between the move and its record), the
  missing move is appended. A re-run therefore fills the gap, and repeating a move that is
  already recorded adds nothing: readers fold consecutive identical moves of an alias into one.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlci.registry import tags as vocab
from mlci.registry.tracking import set_model_tags

ALIASES = ("champion", "previous", "challenger")


@dataclass(frozen=True)
class Context:
    """Who and what moved an alias: the same for every move of one command."""

    why: str
    actor: str | None = None
    approved_by: tuple[str, ...] = ()
    git_sha: str | None = None
    pr: str | None = None
    run_url: str | None = None
    forced: bool = False


@dataclass(frozen=True)
class Move:
    at: str
    alias: str
    before: str | None
    after: str | None
    why: str
    actor: str | None = None
    approved_by: tuple[str, ...] = field(default_factory=tuple)
    git_sha: str | None = None
    pr: str | None = None
    run_url: str | None = None
    forced: bool = False
    key: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["approved_by"] = list(self.approved_by)
        return out


def _now() -> tuple[str, int]:
    ns = time.time_ns()
    return time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)
    ) + f".{ns % 10**9 // 10**6:03d}Z", ns


def note(
    client: Any, name: str, alias: str, before: str | None, after: str | None, ctx: Context
) -> None:
    """Append one move (``after`` None: the alias was removed)."""
    at, ns = _now()
    # sortable by time, unique per writer: two jobs writing at the same nanosecond differ
    key = f"{ns:020d}-{secrets.token_hex(4)}"
    entry = {
        "at": at,
        "alias": alias,
        "before": before,
        "after": after,
        "why": ctx.why[:1000],
        "actor": ctx.actor,
        "approved_by": list(ctx.approved_by),
        "git_sha": ctx.git_sha,
        "pr": ctx.pr,
        "run_url": ctx.run_url,
        "forced": ctx.forced,
    }
    text = json.dumps({k: v for k, v in entry.items() if v not in (None, [], False)})
    set_model_tags(client, name, {f"{vocab.HISTORY}{key}": text[:5000]})


def read(model_tags: Mapping[str, Any] | None) -> list[Move]:
    """Every recorded move, oldest first; a move repeated by a re-run or a concurrent writer
    (the same alias, from and to, one after the other) shown once."""
    found: list[Move] = []
    for name, value in sorted((model_tags or {}).items()):
        if not name.startswith(vocab.HISTORY):
            continue
        try:
            raw = json.loads(str(value))
        except ValueError:
            continue
        if not isinstance(raw, dict) or raw.get("alias") not in ALIASES:
            continue
        found.append(
            Move(
                at=str(raw.get("at", "")),
                alias=str(raw["alias"]),
                before=_version(raw.get("before")),
                after=_version(raw.get("after")),
                why=str(raw.get("why", "")),
                actor=_text(raw.get("actor")),
                approved_by=tuple(str(a) for a in raw.get("approved_by") or () if a),
                git_sha=_text(raw.get("git_sha")),
                pr=_text(raw.get("pr")),
                run_url=_text(raw.get("run_url")),
                forced=raw.get("forced") is True,
                key=name[len(vocab.HISTORY) :],
            )
        )
    out: list[Move] = []
    last: dict[str, Move] = {}
    for move in found:
        seen = last.get(move.alias)
        if seen is not None and (seen.before, seen.after) == (move.before, move.after):
            continue
        if move.before == move.after:
            continue
        last[move.alias] = move
        out.append(move)
    return out


def _version(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def current(moves: list[Move]) -> dict[str, str | None]:
    """Where the trail says each alias points."""
    where: dict[str, str | None] = {}
    for move in moves:
        where[move.alias] = move.after
    return where


def reconcile(client: Any, name: str, aliases: Mapping[str, str | None], ctx: Context) -> int:
    """Append the moves the trail lacks so that it ends where ``aliases`` point now; how many.

    ``aliases`` is what the registry says (read by the caller after its moves). A move made by
    a job that stopped before recording it is recorded here, by the next command, with
    ``ctx`` (its ``why`` says it was recorded late)."""
    model = client.get_registered_model(name)
    recorded = current(read(getattr(model, "tags", None) or {}))
    late = Context(
        why="found where the trail did not say (moved by a job that stopped before its record, "
        f"or outside mlci); seen by: {ctx.why}"[:1000],
        actor=ctx.actor,
        run_url=ctx.run_url,
    )
    added = 0
    for alias in ALIASES:
        now = aliases.get(alias)
        if recorded.get(alias) != now and not (now is None and alias not in recorded):
            note(client, name, alias, recorded.get(alias), now, late)
            added += 1
    return added
