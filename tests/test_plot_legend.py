"""Plot images say what the report says: the base in grey, this PR in blue (one constant for
both), each revision named "base (main@abc1234)" and "this PR (abc1234)", never DVC's
``workspace``, a full SHA or DVC's own palette. Rendered through the real renderer (vl-convert,
in its child process) from the specification DVC fills for a real project."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlci.plots import child as plot_child
from mlci.plots import png as plot_png
from mlci.plots import render as plot_render
from mlci.plots.child import Job
from mlci.plots.collect import WORKSPACE, PlotSet, collect
from mlci.plots.legend import BASE, LEGEND, PR, Legend, restyle
from mlci.settings.plots import PlotSettings

from conftest import git

DVC_PALETTE = ("#945dd6", "#13adc7")  # what DVC's templates colour revisions with
HEAD = "c0ffee1" + "0" * 33
DVC_YAML = """\
plots:
  - importance.json:
      template: bar_horizontal
      x: importance
      y: feature
  - loss.json:
      x: step
      y: loss
"""


def _write(root: Path, shift: float) -> None:
    rows = [{"feature": f, "importance": v + shift} for f, v in (("age", 0.5), ("income", 0.3))]
    (root / "importance.json").write_text(json.dumps(rows))
    loss = [{"step": i, "loss": 1 / (i + 1) + shift} for i in range(30)]
    (root / "loss.json").write_text(json.dumps(loss))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_env: Path) -> tuple[Path, str]:
    """Base committed on main; the PR's changes in the work tree."""
    root = tmp_path_factory.mktemp("legend") / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    (root / "dvc.yaml").write_text(DVC_YAML)
    _write(root, 0.0)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    _write(root, 0.2)
    return root, git(root, "rev-parse", "HEAD").strip()


def _pixels(png: bytes) -> dict[str, int]:
    """How many pixels of each colour (as #rrggbb) the PNG has."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        counts = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
    return {"#{:02x}{:02x}{:02x}".format(*rgb): n for n, rgb in counts}


def test_images_are_grey_and_blue_with_named_revisions(
    project: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = project
    settings = PlotSettings()
    plotset = collect(root, base, settings, out_dir=tmp_path, base_name="main", head_sha=HEAD)
    rendered: list[Job] = []

    def real(jobs: Any) -> list[bytes | str]:
        rendered.extend(jobs)
        return plot_child.render(jobs)

    pngs, problems = plot_png.pngs(plotset, settings, render=real)
    assert problems == {} and len(pngs) == len(rendered) == 2
    labels = [f"base (main@{base[:7]})", "this PR (c0ffee1)"]
    for job, img in zip(rendered, pngs, strict=True):
        spec = job.source
        assert isinstance(spec, dict)
        text = json.dumps(spec)
        assert WORKSPACE not in text and base not in text and HEAD not in text, img.plot_id
        assert not {c.lower() for c in DVC_PALETTE} & set(text.lower().split('"'))
        assert spec["encoding"]["color"]["scale"] == {"domain": labels, "range": [BASE.hex, PR.hex]}
        assert {d["rev"] for d in spec["data"]["values"]} == set(labels)
        pixels = _pixels(img.data)
        assert pixels.get(BASE.hex, 0) > 20 and pixels.get(PR.hex, 0) > 20, img.plot_id
        assert not set(DVC_PALETTE) & set(pixels), img.plot_id
    bar = _pixels(pngs[[p.plot_id for p in pngs].index("importance.json")].data)
    assert bar[BASE.hex] > 1000 and bar[PR.hex] > 1000  # filled bars of exactly these colours
    # the words of the report name the same colours
    assert f"<sub>{BASE.name}: base · {PR.name}: this PR</sub>" == LEGEND
    assert (BASE.name, PR.name) == ("grey", "blue")
    assert LEGEND in plot_render.section(plotset, None, settings, problems, pngs)


def test_the_legend_says_the_labels(project: tuple[Path, str], tmp_path: Path) -> None:
    """The legend's text as the renderer lays it out (its SVG form of the same specification)."""
    vl_convert = pytest.importorskip("vl_convert")
    root, base = project
    plotset = collect(root, base, PlotSettings(), out_dir=tmp_path, base_name="main", head_sha=HEAD)
    loss = next(p for p in plotset.plots if p.id == "loss.json")
    assert loss.spec is not None
    spec = plot_png.clean(restyle(loss.spec, plotset.revisions(), _legend(plotset)))
    svg = vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert f"base (main@{base[:7]})" in texts and "this PR (c0ffee1)" in texts
    assert not [t for t in texts if WORKSPACE in t or base[:12] in t]


def _legend(plotset: PlotSet) -> Legend:
    return Legend.of(plotset.base_name, plotset.base, plotset.head_sha)


SHA, PR_SHA = "ab" * 20, "cd" * 20
HOSTILE = ("ma\x00in\x1b[31m\u0085\ud800", "ab\x07" * 20, "c\nd" * 20)


@pytest.mark.parametrize(
    ("given", "labels"),
    [
        (("main", SHA, PR_SHA), ("base (main@abababa)", "this PR (cdcdcdc)")),
        (("release/1.2", SHA, None), ("base (release/1.2@abababa)", "this PR")),
        (("", SHA, ""), ("base (abababa)", "this PR")),
        (("ababab", SHA, PR_SHA), ("base (abababa)", "this PR (cdcdcdc)")),  # a SHA, no name
        (("clf@champion (v3)", SHA, PR_SHA), ("base (clf@champion (v3), abababa)",
                                               "this PR (cdcdcdc)")),
        (HOSTILE, ("base (ma in [31m, ab ab a)", "this PR (c dc dc)")),
        (("x" * 500, SHA, PR_SHA), (f"base ({'x' * 60}@abababa)", "this PR (cdcdcdc)")),
    ],
)  # fmt: skip
def test_labels_are_short_and_printable(
    given: tuple[str, str, str | None], labels: tuple[str, str]
) -> None:
    legend = Legend.of(*given)
    assert (legend.base, legend.pr) == labels
    assert all(label.isprintable() for label in labels)


def test_a_hostile_base_name_renders(project: tuple[Path, str], tmp_path: Path) -> None:
    """A label is data: control characters in it never reach vl-convert (which aborts on
    them); the chart still renders, coloured and named."""
    root, base = project
    settings = PlotSettings()
    nasty = "feat\x00/\x1b[2J\u200b\u0007x"
    plotset = collect(root, base, settings, out_dir=tmp_path, base_name=nasty, head_sha=HEAD)
    pngs, problems = plot_png.pngs(plotset, settings)
    assert problems == {} and len(pngs) == 2
    assert all(_pixels(p.data).get(PR.hex, 0) > 20 for p in pngs)


def test_revisions_dvc_names_map_to_base_and_pr() -> None:
    plotset = PlotSet("ab" * 20, ())
    assert plotset.revisions() == {"ab" * 20: "base", WORKSPACE: "pr"}
    spec = {
        "data": {"values": [{"rev": WORKSPACE, "x": 1}, {"rev": "ab" * 20, "x": 0}]},
        "encoding": {"color": {"field": "rev", "scale": {"domain": [WORKSPACE, "ab" * 20],
                                                         "range": list(DVC_PALETTE)}}},
        "layer": [{"encoding": {"color": {"field": "rev", "type": "nominal"},
                                "strokeDash": {"field": "filename"}}}],
    }  # fmt: skip
    out = restyle(spec, plotset.revisions(), Legend("B", "P"))
    assert [d["rev"] for d in out["data"]["values"]] == ["B", "P"]  # the base first
    scale = {"domain": ["B", "P"], "range": [BASE.hex, PR.hex]}
    assert out["encoding"]["color"]["scale"] == scale
    assert out["layer"][0]["encoding"]["color"]["scale"] == scale
    assert "scale" not in out["layer"][0]["encoding"]["strokeDash"]
    assert spec["data"]["values"][0]["rev"] == WORKSPACE  # the input is left as it was
