"""A check's plots are read once per commits and work-tree files: a re-run reuses them without
DVC and renders the same section; a changed plot file, a new file in a declared folder, a
changed work tree or another base is read again by DVC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_plots import build

from mlci.plots import memo
from mlci.plots import render as plot_render
from mlci.plots.collect import PlotSet
from mlci.settings.plots import PlotSettings

from conftest import git

SETTINGS = PlotSettings()


@pytest.fixture
def committed(tmp_path: Path, isolated_env: Path) -> tuple[Path, str]:
    """The plots project of test_plots, its PR committed; ``eval/importance.json`` is ignored
    by git, as a pipeline's output is (DVC reads it from the work tree only)."""
    root = tmp_path / "project"
    base = build(root, gitignore="eval/importance.json\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "pr")
    return root, base


def _read(root: Path, base: str) -> PlotSet:
    return memo.collect(root, base, SETTINGS, out_dir=root / ".mlci" / "plots-src")


def _section(found: PlotSet) -> str:
    return plot_render.section(found, None, SETTINGS)


def test_a_rerun_reads_nothing_again_and_renders_the_same(
    committed: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, base = committed
    first = _read(root, base)
    assert {p.id for p in first.shown()} >= {"ROC", "Confusion", "eval/importance.json"}
    assert any(p.kind == "image" for p in first.plots)  # images DVC wrote are checked too
    import dvc.render.match

    def boom(**_: object) -> None:
        raise AssertionError("DVC's plots were read")

    monkeypatch.setattr(dvc.render.match, "match_defs_renderers", boom)
    again = _read(root, base)
    assert _section(again) == _section(first)
    assert [p.id for p in again.plots] == [p.id for p in first.plots]
    assert again.errors == first.errors and again.hidden == first.hidden
    # a cache of the same name that a pull request commits is never read: named by a secret
    assert not (root / ".mlci" / "plots-memo").exists()


@pytest.mark.parametrize(
    "change",
    ["ignored output", "new file in a declared folder", "image gone", "dirty work tree", "base"],
)
def test_what_changed_is_read_again(
    committed: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    root, base = committed
    _read(root, base)
    if change == "ignored output":
        imp = [{"feature": "age", "importance": 0.9}, {"feature": "income", "importance": 0.1}]
        (root / "eval/importance.json").write_text(json.dumps(imp))
    elif change == "new file in a declared folder":
        (root / "dvclive/plots/metrics/acc.tsv").write_text("step\tacc\n0\t0.5\n1\t0.7\n")
    elif change == "image gone":
        for image in (root / ".mlci" / "plots-src").rglob("*.png"):
            image.unlink()
    elif change == "dirty work tree":
        (root / "eval/roc_test.json").write_text(json.dumps([{"fpr": 0, "tpr": 0.2}]))
    else:
        base = git(root, "rev-parse", "HEAD").strip()  # the PR against itself
    name = memo.key(root, base, SETTINGS, root / ".mlci" / "plots-src", "", "x")
    assert (name is None) == (change == "dirty work tree")  # a dirty tree keeps nothing
    calls = _count_dvc_reads(monkeypatch)
    found = _read(root, base)
    assert calls == [1], change
    if change == "ignored output":
        [imp_plot] = [p for p in found.plots if p.id == "eval/importance.json"]
        assert {d["importance"] for d in imp_plot.datapoints if d["rev"] == "pr"} == {0.9, 0.1}
    if change == "new file in a declared folder":
        assert any("acc" in json.dumps(p.json) for p in found.plots)
    calls.clear()
    if change != "dirty work tree":  # then it is kept anew and reused
        _read(root, base)
        assert calls == []


def test_after_the_pull_requests_code_ran_nothing_kept_is_read(
    committed: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its stages could have read the clone's secret and written an entry: the check reads the
    plots anew (and keeps them for a check in which no stage runs)."""
    root, base = committed
    _read(root, base)
    calls = _count_dvc_reads(monkeypatch)
    memo.collect(root, base, SETTINGS, out_dir=root / ".mlci" / "plots-src", reuse=False)
    assert calls == [1]
    _read(root, base)
    assert calls == [1]


def _count_dvc_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From here on, each read of the plots through DVC appends to the list returned."""
    import dvc.render.match

    real = dvc.render.match.match_defs_renderers
    calls: list[int] = []

    def counted(**kwargs: object) -> object:
        calls.append(1)
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dvc.render.match, "match_defs_renderers", counted)
    return calls
