"""Plots never decide the fate of a check: text that makes vl-convert abort its process (a
control character in a label or a plot id: a Rust panic "in a function that cannot unwind",
SIGABRT) is cleaned before it reaches the renderer, and the renderer runs in a child process
with a time and a memory bound, so even a crash there costs only the images."""

from __future__ import annotations

from typing import Any

import pytest

from mlci.plots import child as plot_child
from mlci.plots import png as plot_png
from mlci.plots import render as plot_render
from mlci.plots.collect import Plot, PlotSet
from mlci.report import images
from mlci.settings.plots import PlotSettings

from conftest import Workspace, git
from github_server import FakeGitHub
from test_publish_flow import github_env

# what vl-convert 1.9 aborts on (checked in a throwaway process: exit -6, SIGABRT)
NASTY_LABEL = "cat\u0001"
NASTY_ID = "Pets\x1b[31m"


def _bars(label: str) -> dict[str, Any]:
    return {
        "data": {"values": [{"a": label, "b": 2}, {"a": "dog", "b": 3}]},
        "mark": "bar",
        "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b"}},
    }


def _confusion(plot_id: str, label: str) -> Plot:
    points = [
        {"actual": a, "predicted": p, "rev": rev}
        for rev in ("base", "pr")
        for a, p in ((label, label), (label, "dog"), ("dog", "dog"), ("dog", label))
    ]
    spec = {
        "title": plot_id,
        "data": {"values": points},
        "mark": "rect",
        "encoding": {
            "x": {"field": "predicted", "type": "nominal"},
            "y": {"field": "actual", "type": "nominal"},
            "color": {"aggregate": "count", "type": "quantitative"},
        },
    }
    return Plot(plot_id, "vega", "confusion", plot_id, "predicted", "actual",
                datapoints=tuple(points), spec=spec)  # fmt: skip


def _line(plot_id: str) -> Plot:
    points = [{"step": i, "loss": 1 / (i + 1), "rev": rev} for rev in ("base", "pr")
              for i in range(5)]  # fmt: skip
    spec = {"data": {"values": points}, "mark": "line",
            "encoding": {"x": {"field": "step", "type": "quantitative"},
                         "y": {"field": "loss", "type": "quantitative"},
                         "color": {"field": "rev", "type": "nominal"}}}  # fmt: skip
    return Plot(plot_id, "vega", "linear", plot_id, "step", "loss", "step", "loss",
                datapoints=tuple(points), spec=spec)  # fmt: skip


def test_text_is_cleaned_for_the_renderer() -> None:
    spec = {"title": NASTY_ID, "data": {"values": [{"a\x85": "x\ud800y\ufffe", "n": 1.5}]},
            "keep": "tab\there\nnewline", "list": ("cat\u0001", None, True)}  # fmt: skip
    assert plot_png.clean(spec) == {
        "title": "Pets\ufffd[31m",
        "data": {"values": [{"a\ufffd": "x\ufffdy\ufffd", "n": 1.5}]},
        "keep": "tab\there\nnewline",
        "list": ["cat\ufffd", None, True],
    }


def test_an_aborting_renderer_costs_one_image_not_the_process() -> None:
    """A specification vl-convert really aborts on (not cleaned here, on purpose): the child
    dies of SIGABRT, this process goes on, the one image says why, the others are rendered by
    a fresh child."""
    done = plot_child.render([plot_child.Job("vega-lite", _bars("ok")),
                              plot_child.Job("vega-lite", _bars(NASTY_LABEL)),
                              plot_child.Job("vega-lite", _bars("fine"))])  # fmt: skip
    assert isinstance(done[0], bytes) and isinstance(done[2], bytes)
    assert images.problem(done[0]) is None and images.problem(done[2]) is None
    assert isinstance(done[1], str)
    assert done[1].startswith("not rendered: the renderer crashed (SIGABRT)")
    assert "\n" not in done[1]


def test_renderer_bounds_in_time_and_memory() -> None:
    jobs = [plot_child.Job("vega-lite", _bars(str(i))) for i in range(3)]
    late = plot_child.render(jobs, time_bound=0.2)
    assert late == ["not rendered: the renderer passed its time bound (0.2 s)"] * 3
    starved = plot_child.render(jobs, memory_bound=256 * 1024**2)
    assert all(isinstance(r, str) and "ran out of memory (bound 0.25 GiB)" in r for r in starved)


def test_a_crash_in_the_plots_stage_keeps_every_other_plot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the cleaning taken out (in this test only), the renderer really aborts: the
    section still has every plot, its table and chart, and one line saying why the images
    are missing."""
    monkeypatch.setattr(plot_png, "clean", lambda value: value)
    plotset = PlotSet("0" * 40, (_confusion(NASTY_ID, NASTY_LABEL), _line("loss")))
    pngs, problems = plot_png.pngs(plotset, PlotSettings())
    assert [p.plot_id for p in pngs] == ["loss"]  # rendered by a second child
    assert problems[NASTY_ID].startswith("not rendered: the renderer crashed (SIGABRT)")
    text = plot_render.section(plotset, None, PlotSettings(), problems, pngs)
    assert "2 of 2 declared plots shown" in text
    assert "| **cat" in text and "```mermaid" in text  # the table and the chart are there
    assert "- no image: not rendered: the renderer crashed (SIGABRT)" in text
    assert "\x1b" not in text and "\x01" not in text


def test_the_same_plots_cleaned_render_every_image() -> None:
    plotset = PlotSet("0" * 40, (_confusion(NASTY_ID, NASTY_LABEL), _line("loss")))
    pngs, problems = plot_png.pngs(plotset, PlotSettings())
    assert problems == {}
    assert sorted(p.plot_id for p in pngs) == sorted([NASTY_ID, "loss"])


@pytest.mark.slow
def test_pr_check_with_control_characters_in_plots(
    workspace: Workspace, github: FakeGitHub
) -> None:
    """A real `mlci run` on a PR whose plot data has a class "cat\\u0001" and whose plot id
    holds an escape character: before, vl-convert took the process down (no report, no
    comment); now the check passes, with every plot and its images."""
    project = workspace.project
    git(project, "checkout", "-q", "pr/tune-model")
    (project / "eval").mkdir()
    rows = ["actual,predicted"] + [
        f"{a},{p}" for a, p in ((NASTY_LABEL, NASTY_LABEL), (NASTY_LABEL, "dog"), ("dog", "dog"))
    ]
    (project / "eval/pets.csv").write_text("\n".join(rows) + "\n")
    with open(project / "dvc.yaml", "a", encoding="utf-8") as f:
        f.write(
            '\nplots:\n  - "Pets\\e[31m":\n      template: confusion\n      x: predicted\n'
            "      y:\n        eval/pets.csv: actual\n"
        )
    git(project, "add", "-A")
    git(project, "commit", "-qm", "a plot with control characters")
    git(project, "checkout", "-q", "main")
    ci = workspace.clone()
    env = github_env(github, workspace.work, ci)
    proc = workspace.mlci(ci, "run", "--base", "main", **env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (ci / ".mlci" / "report.md").read_text()
    assert "4 of 4 declared plots shown" in report
    assert "| **cat" in report and "\x01" not in report and "\x1b" not in report
    comment = [c for c in github.comments[7] if "<!-- mlci-report:mlci -->" in c["body"]]
    assert len(comment) == 1 and comment[0]["body"] == report
    assert report in (workspace.work / "summary.md").read_text()
    commit = github.git.history("mlci-plots")[0]
    pngs = [f for f in github.git.files(commit) if f.endswith(".png")]
    assert len(pngs) == 4  # the three example plots and the one with control characters
    assert any("/Pets-31m-" in f for f in pngs)
    assert "no image" not in report
