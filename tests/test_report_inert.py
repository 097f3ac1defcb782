"""Strings from data stay inert in every report, and a huge report loses nothing.

Reports are parsed as CommonMark with GFM tables and autolinks (markdown-it-py + linkify), not
only searched as strings: a link, an image, a raw HTML tag, a broken table row or an unbalanced
``<details>`` shows up as a token.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from mlci.checks.drift import ColumnDrift, DriftReport, FileDrift
from mlci.checks.privacy import Finding, PiiReport
from mlci.checks.validation import Failure, FileResult, ValidationReport
from mlci.ci import CIContext
from mlci.github.client import CHECK_TEXT_LIMIT, SUMMARY_LIMIT
from mlci.limits import COMMENT_LIMIT
from mlci.markdown import code, fit, flat, inert
from mlci.project.remote import DataVersion, PullResult
from mlci.promotion.note import PromotionFacts, promotion_note
from mlci.report.artifact import load_artifact
from mlci.report.publish import publish, save_artifact
from mlci.report.render import (
    MARKER_PREFIX,
    ReportInput,
    Verdict,
    marker_for,
    render,
)
from mlci.settings.config import Settings
from mlci.settings.gates import Gate
from mlci.verdict.metrics import compare

from github_server import FakeGitHub

HOSTILE = (
    "@org/team",
    "[x](https://evil.example/x)",
    "a`b<img src=x>",
    "</details>",
    "p|q",
    "two\nlines",
    "<!-- mlci-report:other -->",
    "www.evil.example and me@evil.example",
    "**b** _i_ ~~s~~ $x$ #12 ![i](https://evil.example/i.png)",
    "ends with a backslash\\",
    "``` fence",
    "<details><summary>open</summary>",
)
BRANCH = "main`<img src=x>`@org/team"
MARKER = marker_for("mlci")
TAGS = re.compile(r"</?(details|summary|sub|code)( open)?>")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": True})
    md.enable(["table", "strikethrough", "linkify"])
    md.linkify.set({"fuzzy_link": False})  # GFM links www. and scheme:// only, not bare hosts
    return md


def _walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for t in tokens:
        out.append(t)
        out += _walk(t.children or [])
    return out


def _cells(line: str) -> int:
    """GFM's cell count of a table row: split on pipes that no backslash escapes."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return len(re.split(r"(?<!\\)\|", inner))


def assert_inert(
    md: str, data: tuple[str, ...], marker: str = MARKER, links: tuple[str, ...] = ()
) -> None:
    """No data string became markup, and each is still there, whole, as text or code.
    ``links`` are the only link targets allowed (mlci's own, such as the run's URL)."""
    tokens = _parser().parse(md)
    flat_tokens = _walk(tokens)
    kinds = {t.type for t in flat_tokens}
    assert not kinds & {"image", "s_open", "em_open"}, kinds  # mlci writes neither
    hrefs = [t.attrs.get("href") for t in flat_tokens if t.type == "link_open"]
    assert set(hrefs) <= set(links), hrefs
    # the only raw HTML is mlci's own: details/summary/sub/code tags and its marker
    depth = 0
    for t in flat_tokens:
        if t.type not in ("html_block", "html_inline"):
            continue
        for tag in re.findall(r"<[^>]*>", t.content):
            assert TAGS.fullmatch(tag) or tag == marker, tag
            depth += tag.startswith("<details") - tag.startswith("</details")
            assert depth >= 0, "a </details> closes more than was opened"
    assert depth == 0, "a <details> is left open"
    # nothing in the rendered text is a mention, a reference or an autolink on GitHub
    text = " ".join(t.content for t in flat_tokens if t.type in ("text", "text_special"))
    for link in links:
        text = text.replace(link, "")
    assert not re.search(r"@[A-Za-z0-9]", text), text
    assert not re.search(r"#\d", text)
    assert not re.search(r"[A-Za-z]+://|(?i:\bwww\.)", text)
    # one heading of the verdict; every other heading is a section of mlci's
    levels = [t.tag for t in flat_tokens if t.type == "heading_open"]
    assert levels.count("h2") == 1 and set(levels) <= {"h2", "h3"}, levels
    # every table row has its header's cell count
    lines = md.split("\n")
    for t in tokens:
        if t.type == "table_open" and t.map:
            rows = lines[t.map[0] : t.map[1]]
            assert {_cells(r) for r in rows} == {_cells(rows[0])}, rows
    # only our marker is in the raw text (comments are found again by substring)
    assert md.count(MARKER_PREFIX) == md.count(marker) <= 1
    # and nothing was lost: each string is there, as code or as text
    shown = " ".join(
        t.content for t in flat_tokens if t.type in ("text", "text_special", "code_inline")
    )
    shown += " ".join(t.content for t in flat_tokens if t.type == "html_block")
    shown = shown.replace("\u200b", "")
    html_shown = re.sub(r"&[#\w]+;", lambda m: _entity(m.group()), shown)
    for s in data:
        assert flat(s) in shown or flat(s) in html_shown, s


def _entity(ref: str) -> str:
    import html

    return html.unescape(ref)


def _hostile_input() -> ReportInput:
    names = list(HOSTILE)
    base = {n: 0.9 for n in names}
    head = {n: 0.8 for n in names}
    gates = [Gate(names[0], "higher"), Gate(names[1], "lower"), Gate(names[2], "higher")]
    c = compare(
        base,
        head,
        gates,
        base_rev=BRANCH,
        base_sha="a" * 40,
        base_params={n: n for n in names},
        head_params={n: f"{n} (new)" for n in names},
    )
    failures = tuple(Failure(n, n, 2, (n, n)) for n in names)
    column = ColumnDrift(names[4], "categorical", 0.5, None, None, (*names,), (*names,), True)
    return ReportInput(
        name="@org/team [x](https://evil.example)",
        verdict=Verdict("failed", f"2 gate(s) failed: {names[0]}, {names[2]}", 4),
        comparison=c,
        validation=ValidationReport(tuple(FileResult(n, n, 3, failures) for n in names[:4])),
        drift=DriftReport(
            (
                FileDrift(names[3], 10, 12, (column,)),
                FileDrift(names[2], 1, 1, note=names[6]),
            )
        ),
        pii=PiiReport(tuple(Finding(n, n, n, 1) for n in names)),
        pulled=PullResult(names[0], "s3://x", 2, tuple(DataVersion(n, "0" * 32) for n in names)),
        facts={
            "backend": names[1],
            "device": names[2],
            "gpu": {"available": True, "gpus": [{"name": names[3]}], "util_mean": 50.0},
            "duration_s": 1.5,
            "mlflow_run_id": names[6],
            "mlflow_tracking_uri": "https://evil.example/@org",
        },
        timings={"train": 1.0},
        head_sha="b" * 40,
        notes=(names[7],),
    )


def test_data_cannot_become_markup_anywhere_in_the_report() -> None:
    # Before: gate messages made a live link and a mention, the branch's backtick let
    # `<img src=x>` out of its code span, and `</details>` closed the passed-gates fold.
    md = render(_hostile_input(), marker=MARKER)
    assert_inert(md, (*HOSTILE, BRANCH))
    assert md.split("\n")[0] == MARKER
    assert "<!-- mlci-report:other -->" not in md


def test_the_shortened_report_is_as_inert() -> None:
    inp = _hostile_input()
    md = render(inp, marker=MARKER, limit=6000)
    assert len(md) <= 6000
    assert_inert(md, (BRANCH, HOSTILE[0], HOSTILE[2]))  # the failed gates' names


@pytest.mark.parametrize("refused", [False, True])
def test_promotion_note_is_inert(refused: bool) -> None:
    inp = _hostile_input()
    assert inp.comparison is not None
    facts = PromotionFacts(
        model=HOSTILE[0] + HOSTILE[2],
        git_sha="c" * 40,
        run_id=HOSTILE[1],
        comparison=inp.comparison,
        champion_before="1</details>",
        version=None if refused else "2`<img src=x>`",
        created=True,
        champion="2`<img src=x>`",
        previous="1",
        refused=refused,
    )
    marker = marker_for("x-promotion")
    md = promotion_note("@org/team", facts, marker=marker)
    assert_inert(md, (HOSTILE[0] + HOSTILE[2], HOSTILE[1], "@org/team"), marker=marker)


@pytest.mark.parametrize("text", [*HOSTILE, "", " ", "`", "a``b```c", " lead", "\\|"])
def test_a_code_span_holds_any_text(text: str) -> None:
    tokens = _walk(_parser().parse(f"x {code(text)} y\n\n| {code(text, cell=True)} | z |\n|-|-|\n"))
    spans = [t.content for t in tokens if t.type == "code_inline"]
    want = flat(text).replace("<!--", "<\u200b!--") or " "
    assert spans == [want, want]
    assert [t.type for t in tokens].count("td_open") + [t.type for t in tokens].count(
        "th_open"
    ) == 2


def test_inert_text_reads_the_same() -> None:
    for s in HOSTILE:
        tokens = _walk(_parser().parse(f"| {inert(s)} |\n|-|\n\n<summary>{inert(s)}</summary>\n"))
        cell = "".join(t.content for t in tokens if t.type in ("text", "text_special"))
        assert cell.replace("\u200b", "") == flat(s)
    assert inert("val_loss / under_score") == "val_loss / under_score"  # stays readable


# ---- a huge report: whole on disk and in the artifact, shortened once for GitHub ----


def _huge() -> tuple[str, Verdict, list[str]]:
    head = {f"m{i:04d}.score": i / 5000 for i in range(5000)}
    base = {k: v + 0.01 for k, v in head.items()}
    failing = [f"m{i:04d}.score" for i in (3, 1200, 2500, 4999)]
    gates = [Gate(n, "higher") for n in failing] + [Gate("m0007.score", "lower")]
    c = compare(base, head, gates, base_rev="main", base_sha="a" * 40)
    verdict = Verdict("failed", f"{len(failing)} gate(s) failed: {', '.join(failing)}", 4)
    inp = ReportInput(name="mlci", verdict=verdict, comparison=c, head_sha="b" * 40)
    return render(inp, marker=MARKER), verdict, failing


def _pointer(body: str) -> str:
    """The path the shortening note names."""
    note = next(line for line in body.split("\n") if "The full report is" in line)
    return re.search(r"The full report is `([^`]+)`", note).group(1)  # type: ignore[union-attr]


def test_huge_report_is_whole_on_disk_and_fits_in_the_comment(
    tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the file, the summary and the comment were all the same cut text, and the
    # comment's pointer named a "full report" that was nowhere.
    md, verdict, failing = _huge()
    assert md.count("| `m") == 5000 and len(md) > COMMENT_LIMIT
    summary = tmp_path / "summary.md"
    summary.write_text("x" * (SUMMARY_LIMIT - 200_000))  # earlier steps used most of it
    monkeypatch.setenv("GITHUB_TOKEN", github.integration_token)
    settings = Settings(root=tmp_path, github_api_url=github.url, check_run=True)
    ctx = CIContext(
        repository=github.repo,
        pr_number=7,
        head_sha="a" * 40,
        has_token=True,
        step_summary=str(summary),
        run_url="https://github.com/octo/demo/actions/runs/42",
    )
    pub = publish(settings, ctx, md, verdict)
    assert pub.error is None, pub.error
    assert pub.report_path.read_text(encoding="utf-8") == md  # all 5,000 rows
    (comment,) = [c for c in github.comments[7] if MARKER in c["body"]]
    body = comment["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.split("\n")[1] == "## ❌ mlci: failed"
    for name in failing:
        assert f"- ❌ `{name}` got worse" in body
    assert "`m0007.score`" in body.split("### Metrics")[0]  # the passed gate, before the rows
    assert Path(_pointer(body)) == pub.report_path
    assert "<https://github.com/octo/demo/actions/runs/42>" in body
    assert re.search(r"more in the full report", body)
    assert_inert(body, (), links=("https://github.com/octo/demo/actions/runs/42",))
    # the check run got the very same body: the cut happened once
    (run,) = github.check_runs.values()
    assert run["json"]["output"]["summary"] == body and len(body) <= CHECK_TEXT_LIMIT
    # the job summary stayed within 1 MiB, with the verdict, the gates and the pointer
    data = summary.read_bytes()
    assert len(data) <= SUMMARY_LIMIT
    added = data[SUMMARY_LIMIT - 200_000 :].decode("utf-8")
    assert "## ❌ mlci: failed" in added and all(f"`{n}` got worse" in added for n in failing)
    assert Path(_pointer(added)) == pub.report_path
    assert github.violations == []


def test_huge_report_artifact_has_the_whole_report(tmp_path: Path) -> None:
    md, verdict, failing = _huge()
    ctx = CIContext(repository="octo/demo", pr_number=7, head_sha="a" * 40)
    saved = save_artifact(tmp_path / "art", Settings(root=tmp_path), ctx, md, verdict)
    assert (saved / "report-full.md").read_text(encoding="utf-8") == md
    short = (saved / "report.md").read_text(encoding="utf-8")
    assert len(short) + 1 <= COMMENT_LIMIT - len(MARKER)  # room for the publisher's marker
    assert (saved / _pointer(short)).is_file()
    art = load_artifact(saved)  # the publisher's contract holds
    assert all(f"`{n}` got worse" in art.markdown for n in failing)
    assert json.loads((saved / "meta.json").read_text())["verdict"] == "failed"


def test_fit_keeps_every_gate_and_closes_what_it_opens() -> None:
    md, _, failing = _huge()
    for limit in (3000, 20_000):
        short = fit(md, limit, "`x`")
        assert len(short) <= limit
        assert all(f"`{n}` got worse" in short for n in failing)
        assert_inert(short, ())
    tiny = fit(md, 900, "`x`")  # below the report's own shape: whole lines, nothing left open
    assert len(tiny) <= 900 and "The full report is `x`" in tiny
    assert_inert(tiny, ())
