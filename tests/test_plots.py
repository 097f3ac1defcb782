"""Plots: DVC's own plot data at two revisions, Mermaid/tables/PNGs, images on a branch.

The project built here is laid out unlike the bundled example: top-level plots with several
``y`` files and a name as id, a confusion template, a DVCLive-style stage with its plots, a
bar template, and an image folder (PNG and SVG).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import shutil
import socket
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import ConfigError
from mlci.github.client import ContentsRefused, GitHubClient
from mlci.plots import png as plot_png
from mlci.plots import render as plot_render
from mlci.plots.collect import collect
from mlci.report import images as img_mod
from mlci.settings.plots import PlotSettings

from conftest import git
from github_server import FakeGitHub

JS = Path(__file__).parent / "js"
DVC_YAML = """\
stages:
  train:
    cmd: python -c "print('trained')"
    plots:
      - eval/importance.json:
          cache: false
          template: bar_horizontal
          x: importance
          y: feature
plots:
  - ROC:
      template: simple
      x: fpr
      x_label: False positive rate
      y:
        eval/roc_train.json: tpr
        eval/roc_test.json: tpr
  - Confusion:
      template: confusion
      x: predicted
      y:
        eval/classes.csv: actual
  - eval/only_in_pr.json:
      x: a
      y: b
  - images
"""
# what DVCLive writes next to its outputs
DVCLIVE_YAML = """\
plots:
  - plots/metrics:
      x: step
"""


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def _write(root: Path, shift: float) -> None:
    (root / "eval").mkdir(exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "dvclive/plots/metrics").mkdir(parents=True, exist_ok=True)
    for name, power in (("roc_train", 0.5), ("roc_test", 0.6)):
        rows = [{"fpr": i / 20, "tpr": min(1.0, (i / 20) ** power + shift)} for i in range(21)]
        (root / f"eval/{name}.json").write_text(json.dumps(rows))
    labels = ["cat", "dog", "cow"]
    lines = ["actual,predicted"]
    for i in range(60):
        wrong = i % (5 if shift else 4) == 0
        lines.append(f"{labels[i % 3]},{labels[(i + wrong) % 3]}")
    (root / "eval/classes.csv").write_text("\n".join(lines) + "\n")
    imp = [{"feature": f, "importance": v + shift} for f, v in (("age", 0.5), ("income", 0.3))]
    (root / "eval/importance.json").write_text(json.dumps(imp))
    loss = ["step\tloss"] + [f"{i}\t{1 / (i + 1) + shift:.6f}" for i in range(400)]
    (root / "dvclive/plots/metrics/loss.tsv").write_text("\n".join(loss) + "\n")
    (root / "images/sample.png").write_bytes(_png(8, 4, (200, int(shift * 100) % 256, 30)))
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" '
    (root / "images/shape.svg").write_text(
        svg + f'height="10" fill="#{int(shift * 9)}0a0f0"/></svg>'
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_env: Path) -> tuple[Path, str]:
    """Base committed on main; the work tree holds the PR's changes (not committed)."""
    root = tmp_path_factory.mktemp("plots") / "project"
    return root, build(root)


def build(root: Path, gitignore: str = "") -> str:
    """The project in ``root``: the base committed on main (its sha returned), the PR's
    changes written into the work tree."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "dvclive").mkdir()
    (root / "dvclive/dvc.yaml").write_text(DVCLIVE_YAML)
    if gitignore:
        (root / ".gitignore").write_text(gitignore)
    _write(root, 0.0)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    base = git(root, "rev-parse", "HEAD").strip()
    _write(root, 0.1)
    (root / "eval/only_in_pr.json").write_text(json.dumps([{"a": 1, "b": 2}, {"a": 2, "b": 3}]))
    return base


def _cli_json(root: Path, base: str, out: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["dvc", "plots", "diff", base, "--json", "-o", str(out)],
        cwd=root, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_every_plot_is_dvc_plots_diff_data(project: tuple[Path, str], tmp_path: Path) -> None:
    root, base = project
    plotset = collect(root, base, PlotSettings(), out_dir=tmp_path / "ours")
    cli = _cli_json(root, base, tmp_path / "cli")["data"]
    ours = {p.id: p for p in plotset.plots}
    assert set(ours) == set(cli)
    assert {"ROC", "Confusion", "dvclive/plots/metrics/loss.tsv", "eval/importance.json"} <= set(
        ours
    )
    assert {"images/sample.png", "images/shape.svg"} <= set(ours)
    for plot_id, entries in cli.items():
        plot = ours[plot_id]
        if plot.kind == "vega":
            assert list(plot.json) == entries, plot_id  # the same filled Vega-Lite spec
            assert plot.spec == entries[0]["content"]
        else:  # same images, written into another folder
            theirs = sorted(Path(e["url"]).read_bytes() for e in entries)
            assert sorted(Path(e["url"]).read_bytes() for e in plot.json) == theirs
            assert set(plot.images) == {"base", "pr"}
    roc = ours["ROC"]
    assert roc.template == "simple" and roc.x_label == "False positive rate"
    assert {s.source for s in roc.series()} == {"roc_train.json::tpr", "roc_test.json::tpr"}
    assert ours["eval/only_in_pr.json"].notes == (
        "eval/only_in_pr.json at the base revision: file missing",
    )


def test_every_declared_plot_is_accounted_for(project: tuple[Path, str], tmp_path: Path) -> None:
    root, base = project
    settings = PlotSettings.from_mapping({"show": ["ROC", "Conf*", "images/*"]}, "mlci.plots")
    plotset = collect(root, base, settings, out_dir=tmp_path)
    text = plot_render.section(plotset, None, settings)
    for plot_id in ("ROC", "Confusion", "images/sample.png", "images/shape.svg"):
        assert f"{plot_id}" in text
    for hidden in ("dvclive/plots/metrics/loss.tsv", "eval/importance.json"):
        assert f"- `{hidden}`: left out by `plots.show`" in text
    assert text.count("<details>") == text.count("</details>") == 4


def test_confusion_table_counts_base_to_pr(project: tuple[Path, str], tmp_path: Path) -> None:
    root, base = project
    plotset = collect(root, base, PlotSettings(show=("Confusion",)), out_dir=tmp_path)
    (table,) = plot_render.confusion_table(plotset.plots[0], PlotSettings())
    # base: every 4th row predicted wrong (15 of 60); PR: every 5th (12 of 60)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert set(rows) == {"**cat**", "**cow**", "**dog**"}
    assert "5 → **4** (−1)" in rows["**cat**"]
    cells = [c.strip() for line in rows.values() for c in line.split("|")[2:-1]]
    diag_pr = sum(int(c.split("**")[1]) if "→" in c else int(c) for c in cells[0::4])
    assert diag_pr == 48


def _mermaid_blocks(markdown: str) -> list[str]:
    parts = markdown.split("```mermaid\n")[1:]
    return [p.split("\n```", 1)[0] for p in parts]


def _parse_mermaid(blocks: list[str]) -> list[dict[str, Any]]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: Mermaid's parser cannot run (CI installs it)")
    if not (JS / "node_modules" / "mermaid").is_dir():
        pytest.skip("tests/js has no node_modules: run `npm ci --prefix tests/js` (.ci/run does)")
    done = subprocess.run(
        ["node", str(JS / "parse.mjs")], input=json.dumps(blocks), capture_output=True,
        text=True, check=True, timeout=120,
    )  # fmt: skip
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_mermaid_blocks_parse_with_mermaid(project: tuple[Path, str], tmp_path: Path) -> None:
    root, base = project
    settings = PlotSettings(max_points=40)
    plotset = collect(root, base, settings, out_dir=tmp_path)
    blocks = _mermaid_blocks(plot_render.section(plotset, None, settings))
    assert len(blocks) == 5  # ROC x2 sources, loss, importance, only_in_pr
    for block in blocks:
        assert block.startswith('%%{init: {"themeVariables": {"xyChart": {"plotColorPalette"')
        for series in (ln for ln in block.splitlines() if ln.strip().startswith(("line", "bar"))):
            assert series.count(",") <= settings.max_points - 1
    results = _parse_mermaid([*blocks, "xychart-beta\n  line [1, 2,\n"])
    assert results[-1]["ok"] is False  # the parser does reject a broken chart
    assert [r for r in results[:-1] if not r["ok"]] == []
    assert {r["type"] for r in results[:-1]} == {"xychart"}


def test_hostile_names_stay_inert_in_mermaid_and_markdown() -> None:
    hostile = 'x"]\n```\n<img src=x onerror=alert(1)> @admin #1 %%{init: {}}%%'
    assert plot_render.label(hostile) == "x img src=x onerror=alert(1) admin 1 init:"
    from mlci.plots.collect import Plot, PlotSet

    points = [{"s": i, "v": i, "rev": rev} for rev in ("base", "pr") for i in range(3)]
    plot = Plot(hostile, "vega", title=hostile, x="s", y="v", x_label="s", y_label=hostile,
                datapoints=tuple(points))  # fmt: skip
    text = plot_render.section(PlotSet("0" * 40, (plot,)), None, PlotSettings())
    (block,) = _mermaid_blocks(text)
    assert "```" not in block and '"]' not in block and "<img" not in text
    assert "@admin" not in text and "#1 " not in text and "<img" not in text


def test_thinning_keeps_the_shape() -> None:
    spike = [(float(i), 10.0 if i == 517 else 0.0) for i in range(1000)]
    ramp = [(float(i), i / 999) for i in range(0, 1000, 7)]
    grid, (s1, s2) = plot_render.resample([spike, ramp], 50)
    assert len(grid) == 50 and grid[0] == 0.0 and grid[-1] == 999.0
    assert max(s1) == 10.0 and s1.count(10.0) == 1  # the spike survives, once
    assert s2[0] == 0.0 and s2[-1] == pytest.approx(994 / 999)  # the ends stay the ends
    assert all(b >= a for a, b in itertools.pairwise(s2))
    grid, (exact,) = plot_render.resample([[(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]], 50)
    assert grid == [0.0, 1.0, 2.0] and exact == [1.0, 2.0, 4.0]


def test_png_rendered_from_dvc_spec(project: tuple[Path, str], tmp_path: Path) -> None:
    from PIL import Image

    root, base = project
    settings = PlotSettings()
    plotset = collect(root, base, settings, out_dir=tmp_path)
    pngs, problems = plot_png.pngs(plotset, settings)
    assert problems == {}
    by = {(p.plot_id, p.rev): p for p in pngs}
    roc = by[("ROC", "")]
    with Image.open(io.BytesIO(roc.data)) as im:
        im.load()
        assert im.format == "PNG" and im.width > 200 and im.height > 150
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 10  # lines, axes and text, not a blank canvas
    svg = by[("images/shape.svg", "pr")]
    assert svg.data.startswith(img_mod.PNG_MAGIC) and svg.key.endswith(".png")
    assert (
        by[("images/sample.png", "base")].data
        == (tmp_path / f"{base}_images_sample.png").read_bytes()
    )


def _client(github: FakeGitHub, token: str | None = None) -> GitHubClient:
    return GitHubClient(github.url, token or github.integration_token, github.repo,
                        sleep=lambda s: None)  # fmt: skip


def _images(n: int, tag: str) -> list[img_mod.PlotImage]:
    data = [_png(2, 2, (i, ord(tag[0]), 3)) for i in range(n)]
    return [
        img_mod.PlotImage(img_mod.image_key(f"plot {tag} {i}", "pr", d), f"plot {i}", "pr", d)
        for i, d in enumerate(data)
    ]


def test_images_go_to_an_orphan_branch_of_the_same_repository(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = socket.getaddrinfo("127.0.0.1", int(github.url.rsplit(":", 1)[1]))[0][4]
    seen: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        seen.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    settings = PlotSettings(keep_runs=3)
    client = _client(github)
    commits = []
    for run in range(5):
        links = img_mod.publish(client, _images(2, str(run)), settings, run_name=f"run {run}/1")
        commits.append(links.commit)
        assert links.uploaded_bytes == sum(len(i.data) for i in _images(2, str(run)))
        for img in _images(2, str(run)):  # each file named by its content
            url = links.urls[img.key]
            prefix = f"https://github.com/{github.repo}/raw/{links.commit}/mlci-plots/"
            assert url.startswith(prefix) and url.endswith(f"/{img.key}")
            assert img.key.endswith(f"-{hashlib.sha256(img.data).hexdigest()[:32]}.png")
            path = url.removeprefix(f"https://github.com/{github.repo}/raw/{links.commit}/")
            assert github.git.files(str(links.commit))[path] == img.data
    assert github.violations == []
    assert {tuple(a[:2]) for a in seen} == {tuple(allowed[:2])}  # no other host, ever
    git_calls = {r.method + " " + r.path.split("/git/")[-1].split("/")[0] for r in github.requests}
    assert {"POST blobs", "POST trees", "POST commits", "POST refs", "PATCH refs"} <= git_calls
    tip = github.git.files("mlci-plots")
    runs = sorted({p.split("/")[1] for p in tip})
    sizes = [sum(len(i.data) for i in _images(2, str(n))) for n in (2, 3, 4)]
    # pruned to 3; each run folder's name carries its bytes
    assert runs == [f"00000{n + 1}-{b}b-run-{n}-1" for n, b in zip((2, 3, 4), sizes, strict=True)]
    history = github.git.history("mlci-plots")
    assert history[0] == commits[-1] and len(history) == 2  # runs 4 and 5 since the restart


def test_refused_contents_write_names_the_permission(github: FakeGitHub, tmp_path: Path) -> None:
    github.git.contents_write = False
    client = _client(github)
    links = img_mod.publish_or_save(
        client, _images(2, "x"), PlotSettings(), run_name="7", report_dir=tmp_path
    )
    assert links.urls == {} and links.note is not None
    assert "`permissions: contents: write`" in links.note and "artifact" in links.note
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(
        [i.key for i in _images(2, "x")] + ["manifest.json"]
    )
    with pytest.raises(ContentsRefused) as err:
        img_mod.publish_or_save(client, _images(1, "y"), PlotSettings(images="on"),
                                run_name="7", report_dir=tmp_path)  # fmt: skip
    assert err.value.fix == "give the workflow `permissions: contents: write`"


def test_fork_publisher_checks_each_saved_image(github: FakeGitHub, tmp_path: Path) -> None:
    folder = img_mod.save(_images(2, "f"), tmp_path)
    client = _client(github)
    markdown = "\n".join(img_mod.placeholder(i.key) for i in _images(2, "f"))
    links, alts = img_mod.publish_saved(client, folder, PlotSettings(), run_name="fork")
    filled = img_mod.fill(markdown, links, alts)
    assert filled.count("![plot 0 (pr)](https://github.com/octo/demo/raw/") == 1
    assert "mlci-plot-image" not in filled
    victim = tmp_path / "secret.txt"
    victim.write_text("token")
    key = _images(2, "f")[0].key
    (folder / key).unlink()
    (folder / key).symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        img_mod.publish_saved(client, folder, PlotSettings(), run_name="fork")
    (folder / key).unlink()
    (folder / key).write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(ConfigError, match="not a PNG or JPEG"):
        img_mod.publish_saved(client, folder, PlotSettings(), run_name="fork")


def test_branch_that_is_not_ours_is_never_written(github: FakeGitHub) -> None:
    client = _client(github)
    tree = client.create_tree([{"path": "README.md", "mode": "100644", "type": "blob",
                                "sha": client.create_blob(b"hello")}])  # fmt: skip
    assert client.move_branch("main", client.create_commit("init", tree, []), create=True)
    with pytest.raises(ConfigError, match="not an mlci plot images branch"):
        img_mod.publish(client, _images(1, "m"), PlotSettings(branch="main"), run_name="1")
    assert github.requests_to("POST", r"/git/blobs$")[-1:] and len(github.git.history("main")) == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"image": "on"}, "did you mean 'images'"),
        ({"images": "sometimes"}, "not one of auto, on, off"),
        ({"max_points": 1}, "from 2 to 1000"),
        ({"branch": "../main"}, "not a usable branch name"),
        ({"show": 3}, "list of plot ids"),
    ],
)
def test_settings_are_typed(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        PlotSettings.from_mapping(raw, "mlci.plots")
    assert message in err.value.one_line() and "mlci.plots" in err.value.one_line()


def test_settings_parse() -> None:
    s = PlotSettings.from_mapping(
        {"images": False, "show": "ROC, loss*", "max_points": 30, "branch": "ci/plots"}, "x"
    )
    assert s == PlotSettings(show=("ROC", "loss*"), images="off", max_points=30, branch="ci/plots")
    assert s.shows("loss.tsv") and not s.shows("Confusion")
    assert PlotSettings.from_mapping(None, "x").shows("anything")
