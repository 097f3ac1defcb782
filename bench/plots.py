"""Plots: collect + render N plots (Mermaid/tables, and PNGs) against `dvc plots diff --json`
on the same two revisions, plus the bytes a check would upload to the images branch; then the
plots stage of a re-run that publishes its images to the loopback GitHub (the test suite's
server, with GitHub's real 1 s spacing of mutating requests), and the requests it makes.

    python bench/plots.py [N ...]        # default: 4 16

The PR check's hand-written sequence already runs `dvc plots diff`; the target for the
whole no-op check with plots is 0.3x of that sequence (bench/pr_check.py, once the lead wires
plots into `mlci run`). Here: how much collect + render costs on top of DVC's own read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import PY, machine_facts, table, time_cmd, time_fn

from mlci.github.client import GitHubClient
from mlci.plots import png as plot_png
from mlci.plots import render as plot_render
from mlci.plots.collect import collect
from mlci.report import images as plot_images
from mlci.settings.plots import PlotSettings

from github_server import FakeGitHub

DVC = str(Path(PY).parent / "dvc")


def build(root: Path, n: int) -> str:
    """A project with n plots (line, confusion and bar in turn); returns the base commit."""
    run = lambda *a: subprocess.run(a, cwd=root, check=True, capture_output=True)  # noqa: E731
    run("git", "init", "-q", "-b", "main")
    run("git", "config", "user.email", "bench@mlci.invalid")
    run("git", "config", "user.name", "bench")
    run(DVC, "init", "-q")
    kinds = ["linear", "confusion", "bar_horizontal"]
    plots = []
    for i in range(n):
        kind = kinds[i % 3]
        if kind == "linear":
            plots.append(f"  - p{i}.json:\n      x: step\n      y: loss")
        elif kind == "confusion":
            plots.append(
                f"  - p{i}.csv:\n      template: confusion\n      x: predicted\n      y: actual"
            )
        else:
            plots.append(
                f"  - p{i}.json:\n      template: bar_horizontal\n      x: value\n      y: name"
            )
    (root / "dvc.yaml").write_text("plots:\n" + "\n".join(plots) + "\n")
    write(root, n, 0.0)
    run("git", "add", "-A")
    run("git", "commit", "-qm", "base")
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    write(root, n, 0.05)
    return base


def write(root: Path, n: int, shift: float) -> None:
    for i in range(n):
        kind = i % 3
        if kind == 0:
            rows = [{"step": s, "loss": 1 / (s + 1) + shift} for s in range(1000)]
            (root / f"p{i}.json").write_text(json.dumps(rows))
        elif kind == 1:
            labels = ["a", "b", "c", "d"]
            lines = ["actual,predicted"] + [
                f"{labels[r % 4]},{labels[(r + (r % 7 == 0)) % 4]}" for r in range(2000)
            ]
            (root / f"p{i}.csv").write_text("\n".join(lines) + "\n")
        else:
            rows = [{"name": f"f{j}", "value": j / 10 + shift} for j in range(12)]
            (root / f"p{i}.json").write_text(json.dumps(rows))


def render(
    root: Path, base: str, out: Path, settings: PlotSettings, cache: Path | None = None
) -> tuple[str, int]:
    """What a check does: collect, PNGs (unless off), the section; returns it and PNG bytes."""
    plotset = collect(root, base, settings, out_dir=out)
    images, _ = plot_png.pngs(plotset, settings, cache)
    return plot_render.section(plotset, None, settings, images=images), sum(
        len(i.data) for i in images
    )


def stage(
    root: Path, base: str, out: Path, cache: Path, client: GitHubClient, run: str
) -> dict[str, float]:
    """The plots stage of a check with images published: collect, PNGs (cached), publish to
    the images branch, the section; the seconds each part took."""
    settings = PlotSettings()
    took: dict[str, float] = {}
    start = time.perf_counter()
    plotset = collect(root, base, settings, out_dir=out, base_name="main")
    took["collect"] = time.perf_counter() - start
    pngs, problems = plot_png.pngs(plotset, settings, cache)
    took["pngs"] = time.perf_counter() - start - took["collect"]
    mark = time.perf_counter()
    links = plot_images.publish_or_save(client, pngs, settings, run_name=run, report_dir=None)
    took["publish"] = time.perf_counter() - mark
    plot_render.section(plotset, links, settings, problems, pngs)
    took["stage"] = time.perf_counter() - start
    return took


def _kinds(server: FakeGitHub, since: int) -> str:
    """The requests made since request ``since``, counted by method and Git Data resource."""
    counted = Counter(
        f"{r.method} {r.path.split('/git/')[-1].split('/')[0] if '/git/' in r.path else 'other'}"
        for r in server.requests[since:]
    )
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counted.items())) or "none"


def bench_rerun(root: Path, base: str, tmp: Path, dvc_cli: float) -> None:
    """A check's plots stage run again on the same revisions: what a re-run of the PR check
    costs for plots, GitHub's 1 s spacing of mutating requests included (real sleeps)."""
    server = FakeGitHub().start()
    try:
        client = GitHubClient(server.url, server.integration_token, server.repo)
        out, cache = tmp / "rerun-src", tmp / "rerun-cache"
        first = stage(root, base, out, cache, client, "1-1")  # renders and uploads
        first_requests = _kinds(server, 0)
        runs = []
        for attempt in (2, 3, 4):
            before = len(server.requests)
            runs.append(stage(root, base, out, cache, client, f"1-{attempt}"))
        again = _kinds(server, before)
        commits = len(server.git.history("mlci-plots"))
    finally:
        server.stop()
    rerun = sorted(runs, key=lambda t: t["stage"])[1]  # the median of three
    print(f"first run's requests: {first_requests}")
    print(f"a re-run's requests: {again}; images-branch commits after 4 runs: {commits}")
    rows: list[tuple[str, float, float | None]] = [("`dvc plots diff --json` (CLI)", dvc_cli, None)]
    for name, took in (("first run", first), ("re-run", rerun)):
        rows.append((f"plots stage, {name}", took["stage"], took["stage"] / dvc_cli))
        for part in ("collect", "pngs", "publish"):
            rows.append((f"  of which {part}", took[part], took[part] / dvc_cli))
    table(rows, "`dvc plots diff`")


def bench(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        root.mkdir()
        base = build(root, n)
        out = Path(tmp) / "ours"
        text_only, with_png = PlotSettings(images="off"), PlotSettings()
        dvc_cli = time_cmd(
            [DVC, "plots", "diff", base, "--json", "-o", str(Path(tmp) / "o")],
            repeat=3,
            cwd=str(root),
        )
        start = time.perf_counter()
        section, uploaded = render(root, base, out, with_png)  # pays vl-convert's start
        first = time.perf_counter() - start
        t_md = time_fn(lambda: render(root, base, out, text_only), repeat=3)
        t_png = time_fn(lambda: render(root, base, out, with_png), repeat=3)
        cache = Path(tmp) / "cache"
        render(root, base, out, with_png, cache)
        t_cached = time_fn(lambda: render(root, base, out, with_png, cache), repeat=3)
        print(f"\n{n} plots · bytes uploaded per check (PNGs): {uploaded:,}")
        bench_rerun(root, base, Path(tmp), dvc_cli)
    print(f"report section: {len(section):,} characters")
    table(
        [
            ("`dvc plots diff --json` (CLI)", dvc_cli, None),
            ("collect + Mermaid/tables (in process)", t_md, t_md / dvc_cli),
            ("collect + Mermaid/tables + PNGs", t_png, t_png / dvc_cli),
            ("first call in a process (vl-convert start)", first, first / dvc_cli),
            ("re-run, PNGs from the cache (no-op check)", t_cached, t_cached / dvc_cli),
        ],
        "`dvc plots diff`",
    )


def main(counts: list[int]) -> None:
    print(machine_facts())
    for n in counts:
        bench(n)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [4, 16])
