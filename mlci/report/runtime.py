"""The report's runtime line: whether the PR's training ran on another stack than the base's.

A training records its runtime (Python, OS, C library, key libraries, CUDA, GPU and driver,
the runner image: ``mlci.training.facts.runtime``) in its facts' ``environment``; the check
adds the base's as ``base_environment``. When they differ in anything but the kernel, the
report says so in one line under the verdict, with the differences folded below it, so a
reviewer can tell a model change from a stack change. Pure: facts in, Markdown out; every
value through ``markdown.code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlci.markdown import code

BASE = "base_environment"  # the facts key the check fills (mlci.training.facts.BASE_RUNTIME)
HEAD = "environment"  # the PR's training facts
# Shown when something else differs, never a reason on its own: the runner's kernel changes
# with the host, not with the stack a project chose.
HOST_ONLY = frozenset({"platform"})
NAMED = 4  # names in the line; the rest are counted


@dataclass(frozen=True)
class Difference:
    name: str
    base: str | None
    head: str | None


def differences(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[Difference]:
    """Every entry whose value differs (or is recorded on one side only), stack first."""
    found = [
        Difference(name, _text(base.get(name)), _text(head.get(name)))
        for name in sorted(set(base) | set(head), key=str)
        if _text(base.get(name)) != _text(head.get(name))
    ]
    return sorted(found, key=lambda d: d.name in HOST_ONLY)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def stack_change(facts: Mapping[str, Any]) -> str:
    """The line and its folded differences; ``""`` when both runtimes are not recorded or the
    stack is the same."""
    base, head = facts.get(BASE), facts.get(HEAD)
    if not (isinstance(base, Mapping) and isinstance(head, Mapping) and base and head):
        return ""
    found = differences(base, head)
    stack = [d.name for d in found if d.name not in HOST_ONLY]
    if not stack:
        return ""
    named = ", ".join(code(n, 60) for n in stack[:NAMED])
    more = f" and {len(stack) - NAMED} more" if len(stack) > NAMED else ""
    line = (
        f"⚙️ **This PR's training ran on another stack than the base's** ({named}{more}): "
        "a metric change may come from the stack, not the model."
    )
    rows = [f"| {code(d.name, 60, cell=True)} | {_cell(d.base)} | {_cell(d.head)} |" for d in found]
    return "\n".join(
        [
            "",
            line,
            "",
            "<details><summary>Runtime: base and this PR</summary>",
            "",
            "| | base | PR |",
            "|---|---|---|",
            *rows,
            "",
            "</details>",
            "",
        ]
    )


def _cell(value: str | None) -> str:
    return "not recorded" if value is None else code(value, 120, cell=True)
