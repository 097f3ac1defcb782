"""Markdown for text we did not write, and a length budget that loses nothing silently.

Every string that comes from data (metric, param, gate, file, column, branch, model and
report names, sample values, run facts) reaches a report through :func:`inert` (prose, table
cells, HTML blocks) or :func:`code` (a code span). Both flatten the text to one line, so a
line of a report always starts with text mlci wrote: :func:`fit` relies on that to shorten a
report by its lines without parsing it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ZWSP = "&#8203;"  # a zero-width space: breaks @mentions, #refs and autolinks, shows nothing

# Markup characters as numeric entities: decoded as plain text by Markdown *and* by HTML,
# so the same escaped text is inert in a table cell, a paragraph and a <summary>.
_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "\\": "&#92;",
    "`": "&#96;",
    "*": "&#42;",
    "[": "&#91;",
    "]": "&#93;",
    "|": "&#124;",
    "~": "&#126;",
    "$": "&#36;",  # GitHub renders $math$
    "#": "&#35;" + ZWSP,  # no #123 issue reference
    "!": "&#33;",
    "@": "&#64;" + ZWSP,  # GitHub finds mentions in the rendered text: break them there too
}
_INERT = re.compile(
    r"[&<>\\`*\[\]|~$#@]"
    r"|!(?=\[)"  # an image needs `![`; a lone `!` stays readable
    r"|(?<![^\W_])_|_(?![^\W_])"  # `_` can only start or end emphasis at a word's edge
    r"|(?<=:)(?=//)"  # scheme://host autolinks
    r"|(?i:(?<=\bwww)(?=\.))"  # www.host autolinks
)


def flat(text: object, limit: int | None = 200) -> str:
    """One printable line, at most ``limit`` characters (an ellipsis marks a cut)."""
    s = "".join(c if c.isprintable() else " " for c in str(text))
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def _escape(match: re.Match[str]) -> str:
    found = match.group()
    if not found:  # the zero-width split of `://` and `www.`
        return ZWSP
    if found == "_":
        return "&#95;"
    return _ENTITIES[found]


def plain_title(text: object, limit: int = 256) -> str:
    """``text`` as an issue or pull-request title, which GitHub shows as plain text: one
    printable line of at most ``limit`` characters (GitHub's 256), and a zero-width space
    after every ``@`` and ``#`` so that no @mention or #reference comes out of data."""
    s = re.sub(r"[@#]", lambda m: m.group() + "\u200b", flat(text, None))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def inert(text: object, limit: int | None = 200) -> str:
    """``text`` as plain characters in Markdown prose, a GFM table cell or an HTML block.

    No emphasis, link, image, raw HTML, code span, table pipe, math, heading, @mention,
    #reference or autolink can come out of it, and it is one line.
    """
    return _INERT.sub(_escape, flat(text, limit))


def code(text: object, limit: int | None = 200, *, cell: bool = False) -> str:
    """``text`` as one code span that nothing inside can close early.

    The fence is one backtick longer than the longest run inside; padding keeps edge
    backticks and spaces. ``cell=True`` escapes ``|`` the way GFM tables want it (the
    backslash is removed again before the span is rendered).
    """
    s = flat(text, limit)
    # A sticky-comment marker must never be found in data: split `<!--` invisibly.
    s = s.replace("<!--", "<\u200b!--")
    if cell:
        s = s.replace("|", "\\|")
    if not s:
        return "` `"
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    # CommonMark strips one space from each end unless the span is all spaces
    pad = " " if s.strip(" ") and (s[0] in "` " or s[-1] in "` ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


# ---- fitting a report into a length budget ----

_GATE_BULLETS = ("- ❌ ", "- ✅ ", "- 🆕 ", "- ⏭ ")
Size = Callable[[str], int]


# ---- hidden markers: how a living comment or issue is found again ----

_MARKER_SAFE = "_.@-/+: "  # kept as written; every other character is percent-encoded


def marker_prefix(kind: str) -> str:
    """The start every ``kind`` marker shares (``<!-- mlci-report:``)."""
    return f"<!-- mlci-{kind}:"


def marker(kind: str, name: str) -> str:
    """The one hidden marker of ``kind`` (report, monitor) for ``name``:
    ``<!-- mlci-KIND:NAME -->``.

    Injective (distinct names never share a comment or an issue: everything but letters,
    digits and ``_.@-/+:`` and inner spaces is percent-encoded, so ``fraud v2?`` and
    ``fraud v2!`` differ) and inert (no ``--``, ``<`` or ``>`` survives, so the name can
    neither close the comment early nor open a tag). A blank name is ``default``.
    """
    from urllib.parse import quote

    shown = quote(name.strip(), safe=_MARKER_SAFE).replace("--", "-%2D") or "default"
    return f"{marker_prefix(kind)}{shown} -->"


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def fit(markdown: str, limit: int, where: str, *, size: Size = len) -> str:
    """``markdown`` itself when it is within ``limit``; otherwise a shortened copy.

    The copy keeps every line that gives the report its shape (headings, the verdict, table
    headers, ``<details>`` tags, notes), then gate bullets (failed gates come first), then
    table rows and other list items, taken round-robin across the tables so a small table is
    kept whole and a huge one gets what is left. Where rows were left out a line says how
    many, and a note under the verdict says ``where`` the full report is. ``size`` measures
    text (characters by default; :func:`utf8_size` for byte limits).
    """
    if size(markdown) <= limit:
        return markdown
    lines = markdown.split("\n")
    fixed, gates, groups = _classify(lines)
    note = [
        "> [!IMPORTANT]",
        f"> This report was shortened to fit GitHub's limit ({limit:,} "
        f"{'characters' if size is len else 'bytes'}). The full report is {where}.",
        "",
    ]
    budget = limit - sum(size(line) + 1 for line in note) - 2
    budget -= sum(size(lines[i]) + 1 for i in fixed)
    budget -= sum(size(_more(len(g))) + 3 for g in [gates, *groups] if g)
    taken: set[int] = set()
    for i in gates:  # gates before rows, in order: failed gates are listed first
        if size(lines[i]) + 1 > budget:
            break
        budget -= size(lines[i]) + 1
        taken.add(i)
    _round_robin(lines, groups, budget, taken, size)
    out = _assemble(lines, set(fixed) | taken, [gates, *groups])
    room = limit - sum(size(line) + 1 for line in note)
    if sum(size(line) + 1 for line in out) > room:  # the shape alone is too big
        out = _hard_cut(out, room, size)
    at = _under_verdict(out)
    out[at:at] = note
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def _classify(lines: list[str]) -> tuple[list[int], list[int], list[list[int]]]:
    """Line numbers of the fixed shape, of gate bullets, and of each table's or list's rows."""
    fixed: list[int] = []
    gates: list[int] = []
    groups: list[list[int]] = []
    fence = False
    prev = ""
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
            fixed.append(i)
        elif fence:
            fixed.append(i)
        elif line.startswith(_GATE_BULLETS):
            gates.append(i)
        elif line.startswith("|"):
            if not prev.startswith("|"):
                groups.append([])
                fixed.append(i)  # header
            elif not groups[-1] and re.fullmatch(r"\|[-:| ]*", line):
                fixed.append(i)  # delimiter row
            else:
                groups[-1].append(i)
        elif line.startswith("- "):
            if not prev.startswith("- ") or prev.startswith(_GATE_BULLETS):
                groups.append([])
            groups[-1].append(i)
        else:
            fixed.append(i)
        prev = "" if fence else line
    return fixed, gates, [g for g in groups if g]


def _round_robin(
    lines: list[str], groups: list[list[int]], budget: int, taken: set[int], size: Size
) -> None:
    """Take the next row of each group in turn while it fits; a group stops at its first
    row that does not, so every table keeps a prefix of its rows."""
    nxt = [0] * len(groups)
    active = list(range(len(groups)))
    while active:
        still = []
        for g in active:
            i = groups[g][nxt[g]]
            cost = size(lines[i]) + 1
            if cost > budget:
                continue
            budget -= cost
            taken.add(i)
            nxt[g] += 1
            if nxt[g] < len(groups[g]):
                still.append(g)
        active = still


def _more(n: int) -> str:
    return f"<sub>… and {n:,} more in the full report</sub>"


def _assemble(lines: list[str], keep: set[int], groups: list[list[int]]) -> list[str]:
    """The kept lines in order, with a count after each group that lost rows."""
    after: dict[int, str] = {}
    for g in groups:
        kept = [i for i in g if i in keep]
        if len(kept) < len(g):
            after[kept[-1] if kept else min(g) - 1] = _more(len(g) - len(kept))
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in keep:
            out.append(line)
        if i in after:
            out += ["", after[i], ""]
    return out


def _under_verdict(lines: list[str]) -> int:
    """Where the shortening note goes: after the paragraph under the first ``## `` heading."""
    head = next((i for i, line in enumerate(lines) if line.startswith("## ")), None)
    if head is None:
        return len(lines)
    for i in range(head + 2, len(lines)):
        if not lines[i].strip():
            return i + 1
    return len(lines)


def _hard_cut(lines: list[str], limit: int, size: Size) -> list[str]:
    """Whole lines within ``limit``, leaving no code fence or ``<details>`` open."""
    closer = "</details>"
    kept: list[str] = []
    used, fence, open_ = 0, False, 0
    for line in lines:
        f = fence != line.startswith("```")
        o = open_ + line.count("<details") - line.count("</details>")
        tail = (4 if f else 0) + max(o, 0) * (size(closer) + 2)
        if used + size(line) + 1 + tail > limit:
            break
        kept.append(line)
        used, fence, open_ = used + size(line) + 1, f, o
    if fence:
        kept.append("```")
    return kept + ["", closer] * max(open_, 0)
