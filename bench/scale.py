"""Scale: wall time and peak memory of mlci's work at three sizes each, and the fitted growth
exponent (log-log slope of time against size over the three; above 1.1 is a finding), with the
slope of the last step beside it (fixed costs flatten the fit at small sizes).

- registry, with 10 / 100 / 1,000 registered versions: the registry work of `mlci promote`
  (``registry.models.promote`` of a new commit), `mlci lineage`, `mlci history`
  (``registry.releases.moves``) and the monitor's champion lookup
  (``mlci.monitor.run.champion``). Each size is a fresh local SQLite store: one logged run with
  a model, registered once through mlci's promotion, then ``MlflowClient.create_model_version``
  N - 1 times with the tags an earlier promotion leaves (commit, commit time, candidate, metric,
  lineage), and the aliases converged as after those promotions;
- the sticky-comment upsert (``GitHubClient.upsert_comment``, updating ours) on a PR with
  100 / 1,000 / 10,000 comments on the test suite's loopback GitHub API: requests and time;
- compare + report (``verdict.metrics.compare``, ``report.render.render``, and the same fitted
  to a comment) with 10 / 500 / 5,000 metrics, 3 gated;
- drift (``checks.drift.compare_frames``, what `mlci monitor` runs) of 10^5 / 10^6 / 10^7 rows
  x 10 columns (8 numeric, 2 categorical): peak resident memory above the frames, against the
  snapshot's in-memory size (target <= 3x); each size in its own process;
- data-version listing (``project.remote.data_versions``, which every pull reports) with
  100 / 1,000 / 10,000 DVC-tracked files, one ``.dvc`` file each (written as `dvc add` writes
  them, hashes computed here), in a fresh process (DVC imported before the clock starts).

Times are medians of a few runs after a warm-up; memory is the peak of Python's allocations
(tracemalloc) during one more run, except drift's, which is resident memory sampled every 2 ms.
Every section runs in its own child process.

    python bench/scale.py [--quick] [--only registry,comments,metrics,drift,files] [--against REV]

``--against REV`` adds the promotion as ``mlci/registry/models.py`` did it at ``REV`` (the rest
of mlci as it is), on the same stores in the same process: a before/after of a registry fix.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from common import PY, machine_facts

HERE = Path(__file__).resolve().parent
SIZES = {
    "registry": (10, 100, 1000),
    "comments": (100, 1000, 10000),
    "metrics": (10, 500, 5000),
    "drift": (100_000, 1_000_000, 10_000_000),
    "files": (100, 1000, 10000),
}
QUICK = {
    "registry": (5, 20, 60),
    "comments": (50, 200, 800),
    "metrics": (10, 100, 1000),
    "drift": (10_000, 100_000, 300_000),
    "files": (20, 100, 400),
}
MARK = "SCALE-RESULT "


# -- measuring -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return median(runs)


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes Python allocated during one call (tracemalloc; numpy's buffers included)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def slope(sizes: Sequence[float], times: Sequence[float]) -> float:
    """The least-squares slope of log(time) against log(size)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(t, 1e-9)) for t in times]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    den = sum((x - mx) ** 2 for x in xs)
    return num / den if den else 0.0


def row(what: str, size: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"what": what, "size": size, "seconds": seconds, **extra}


# -- registry ---------------------------------------------------------------------------------

MODEL = "scale-model"
T0 = 1_760_000_000  # commit times of the earlier promotions: one a minute from here


def _version_tags(i: int, run_id: str) -> dict[str, str]:
    """What an earlier promotion of commit ``i`` leaves on its version (see tags.version)."""
    from mlci.registry import tags as vocab

    sha = f"{i:040x}"
    return {
        vocab.SCHEMA: vocab.VERSION,
        **vocab.commit(sha, "main", i),
        vocab.RUN_ID: run_id,
        vocab.PROMOTED_BY: "bench",
        vocab.COMMIT_TIME: str(T0 + 60 * i),
        vocab.metric_tag("accuracy"): str(0.8 + (i % 100) / 1000),
        vocab.lineage_tag("data", "data/train.csv"): f"{i:032x}",
        vocab.lineage_tag("models", "models/model.pkl"): f"{i + 1:032x}",
        vocab.lineage_tag("code", "src/train.py"): f"{i + 2:032x}",
        vocab.TRAINING_KEY: f"{i:064x}",
        vocab.TRAINING_STAGE: "train",
        vocab.TRAINING: "trained in this job",
        vocab.BACKEND: "sklearn",
        vocab.TASK: "classification",
        **vocab.candidate(),
    }


def _template(work: Path) -> str:
    """A store with one logged run holding a model (copied for each size: creating the schema
    and logging take seconds); the run's id."""
    import mlflow
    from sklearn.dummy import DummyClassifier

    from mlci.registry.tracking import configure

    configure(f"sqlite:///{(work / 'template.db').as_posix()}")
    exp = mlflow.create_experiment("scale", artifact_location=(work / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_metric("accuracy", 0.9)
        model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    return str(run.info.run_id)


def _registry_at(n: int, work: Path, run_id: str) -> list[dict[str, Any]]:
    import shutil

    from mlflow.tracking import MlflowClient

    from mlci.monitor import run as monitor
    from mlci.registry import history, releases
    from mlci.registry import models as registry
    from mlci.registry.tracking import configure
    from mlci.settings.config import Settings

    db = work / f"mlflow-{n}.db"
    shutil.copyfile(work / "template.db", db)
    uri = f"sqlite:///{db.as_posix()}"
    configure(uri)
    client = MlflowClient(uri, registry_uri=uri)
    why = history.Context("bench: earlier promotions", actor="bench")
    first = registry.promote(uri, MODEL, run_id, f"{0:040x}", _version_tags(0, run_id), why=why)
    source = client.get_model_version(MODEL, first.version).source
    start = time.perf_counter()
    for i in range(1, n):
        client.create_model_version(MODEL, source, run_id, tags=_version_tags(i, run_id))
    created = time.perf_counter() - start
    registry.converge(client, MODEL, why=why)
    history.reconcile(client, MODEL, registry.aliases(client, MODEL), why)

    counter = iter(range(n, 10 * n + 100))

    def promote() -> None:
        i = next(counter)
        registry.promote(uri, MODEL, run_id, f"{i:040x}", _version_tags(i, run_id), why=why)

    settings = Settings(root=work, mlflow_tracking_uri=uri, model_name=MODEL)
    ops: list[tuple[str, Callable[[], object], int]] = [
        ("promote (registry work of `mlci promote`)", promote, 3),
    ]
    against = os.environ.get("SCALE_AGAINST")
    if against:  # the same promotion by registry/models.py as it was at another revision
        old = _models_at(against, work)

        def promote_then() -> None:
            i = next(counter)
            old.promote(uri, MODEL, run_id, f"{i:040x}", _version_tags(i, run_id), why=why)

        ops.append((f"promote, registry/models.py at {against}", promote_then, 3))
    ops += [
        ("`mlci lineage` (registry.models.lineage)", lambda: registry.lineage(uri, MODEL), 5),
        ("`mlci history` (registry.releases.moves)", lambda: releases.moves(uri, MODEL), 5),
        (
            "monitor champion lookup (monitor.run.champion)",
            lambda: monitor.champion(settings),
            5,
        ),
    ]
    out = []
    for what, fn, repeat in ops:
        seconds = timed(fn, repeat)
        peak = traced_peak(fn)
        out.append(row(what, n, seconds, peak_bytes=peak))
    out.append(row("create_model_version (setup, per version)", n, created / max(n - 1, 1)))
    return out


def _models_at(rev: str, work: Path) -> Any:
    """``mlci/registry/models.py`` as it was at ``rev``, loaded beside today's."""
    import importlib.util

    text = subprocess.run(
        ["git", "show", f"{rev}:mlci/registry/models.py"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = work / "models_then.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("models_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["models_then"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def registry_section(sizes: Sequence[int]) -> list[dict[str, Any]]:
    import logging
    import tempfile
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        run_id = _template(work)
        for n in sizes:
            out += _registry_at(n, work, run_id)
    return out


# -- the sticky comment -------------------------------------------------------------------------


def comments_section(sizes: Sequence[int]) -> list[dict[str, Any]]:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from mlci.github.client import GitHubClient
    from mlci.report.render import marker_for

    from github_server import FakeGitHub

    out = []
    for n in sizes:
        server = FakeGitHub().start()
        try:
            server.add_comments(7, n - 6)
            client = GitHubClient(server.url, server.token, server.repo, sleep=lambda s: None)
            marker = marker_for("scale")
            client.upsert_comment(7, "first", marker)  # ours, then 5 more by others
            server.add_comments(7, 5)
            sent: list[int] = []

            def update(c: GitHubClient = client, m: str = marker, s: list[int] = sent) -> None:
                before = c.requests_made
                assert not c.upsert_comment(7, "again", m).created
                s.append(c.requests_made - before)

            seconds = timed(update, 3)
            out.append(row("sticky-comment update", n, seconds, requests=sent[-1]))
        finally:
            server.stop()
    return out


# -- compare + report ---------------------------------------------------------------------------


def metrics_section(sizes: Sequence[int]) -> list[dict[str, Any]]:
    import random

    from mlci.limits import COMMENT_LIMIT
    from mlci.report.render import ReportInput, marker_for, render
    from mlci.settings.gates import Gate
    from mlci.verdict import metrics, outcome

    out = []
    rng = random.Random(7)
    kinds = ("accuracy", "loss", "f1", "latency_ms", "rows")
    for n in sizes:
        names = [f"class_{i // len(kinds)}.{kinds[i % len(kinds)]}" for i in range(n)]
        base = {name: rng.random() for name in names}
        head = {name: v + rng.uniform(-0.01, 0.01) for name, v in base.items()}
        gates = (
            Gate(names[0], "higher", abs_tol=0.05),
            Gate(names[1], "lower", rel_tol=0.1),
            Gate(names[2], "higher", min=0.0),
        )
        params = {f"p{i}": i for i in range(20)}
        compare = partial(
            metrics.compare,
            base,
            head,
            gates,
            base_rev="main",
            base_params=params,
            head_params={**params, "p0": 1},
        )
        c = compare()
        inp = ReportInput("scale", outcome.of_comparison(c), c, head_sha="a" * 40)
        marker = marker_for("scale")
        for what, fn in (
            ("compare (verdict.metrics.compare)", compare),
            ("report (report.render.render)", partial(render, inp, marker)),
            ("report fitted to a comment", partial(render, inp, marker, COMMENT_LIMIT)),
        ):
            out.append(row(what, n, timed(fn, 5), peak_bytes=traced_peak(fn)))
    return out


# -- drift --------------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _frame(n: int, seed: int, shift: bool) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {f"x{i}": rng.normal(0, 1, n) for i in range(8)}
    if shift:
        cols["x0"] = cols["x0"] + 0.8
        cols["x1"] = cols["x1"] * 2.0
    p = [0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4]
    cols["region"] = rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n, p=p)
    cols["channel"] = rng.choice(np.array(["web", "app", "shop"], dtype=object), n)
    return pd.DataFrame(cols)


def drift_section(sizes: Sequence[int]) -> list[dict[str, Any]]:
    """One size per process (the parent calls this once per size)."""
    import gc
    import threading

    from mlci.checks.drift import compare_frames
    from mlci.settings.datachecks import Thresholds

    (n,) = sizes
    t = Thresholds(psi=0.2, ks=1.0, tvd=0.1)
    compare_frames("warm", _frame(1000, 1, False), _frame(1000, 2, True), t)  # lazy imports
    ref, snap = _frame(n, 1, False), _frame(n, 2, True)
    snap_bytes = int(snap.memory_usage(deep=True).sum())
    gc.collect()
    floor = _rss()
    peak = [floor]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    found = compare_frames("snapshot", ref, snap, t)
    first = time.perf_counter() - start
    done.set()
    sampler.join()
    assert len(found.columns) == 10
    runs = [first]
    for _ in range(2 if n < 5e6 else 0):
        start = time.perf_counter()
        compare_frames("snapshot", ref, snap, t)
        runs.append(time.perf_counter() - start)
    extra = peak[0] - floor
    return [
        row(
            "drift (checks.drift.compare_frames)",
            n,
            median(runs),
            peak_bytes=extra,
            snapshot_bytes=snap_bytes,
            rss_bytes=peak[0],
        )
    ]


# -- data versions ------------------------------------------------------------------------------


def files_section(sizes: Sequence[int]) -> list[dict[str, Any]]:
    """One size per process: DVC imported first, then the first listing timed (what a pull
    pays), then the listing again (the project read is cached per process)."""
    import hashlib
    import tempfile

    os.environ["DVC_NO_ANALYTICS"] = "1"
    import dvc.repo  # imported before the clock starts, as in any mlci process

    from mlci.project import remote

    (n,) = sizes
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        dvc.repo.Repo.init(str(root))
        (root / "dvc.yaml").write_text(
            "stages:\n  train:\n    cmd: python train.py\n    deps: [data]\n"
            "    outs: [model.pkl]\n",
            encoding="utf-8",
        )
        for i in range(n):
            folder = root / "data" / f"part{i // 1000:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            raw = f"row,{i}\n".encode()
            (folder / f"f{i:05d}.csv").write_bytes(raw)
            (folder / f"f{i:05d}.csv.dvc").write_text(
                f"outs:\n- md5: {hashlib.md5(raw).hexdigest()}\n  size: {len(raw)}\n"
                f"  hash: md5\n  path: f{i:05d}.csv\n",
                encoding="utf-8",
            )
        start = time.perf_counter()
        found = remote.data_versions(root)
        cold = time.perf_counter() - start
        assert len(found) == n, len(found)
        warm = timed(lambda: remote.data_versions(root), 3)
        peak = traced_peak(lambda: remote.data_versions(root))
    return [
        row("data versions, first in a process", n, cold),
        row("data versions, again (project read cached)", n, warm, peak_bytes=peak),
    ]


SECTIONS: dict[str, Callable[[Sequence[int]], list[dict[str, Any]]]] = {
    "registry": registry_section,
    "comments": comments_section,
    "metrics": metrics_section,
    "drift": drift_section,
    "files": files_section,
}
PER_PROCESS = ("drift", "files")  # one child per size


# -- the parent ---------------------------------------------------------------------------------


def child(section: str, sizes: Sequence[int], timeout: float) -> list[dict[str, Any]]:
    cmd = [PY, str(Path(__file__).resolve()), "--child", section]
    cmd += ["--sizes", ",".join(map(str, sizes))]
    env = dict(os.environ, PYTHONPATH=str(HERE), MLFLOW_DISABLE_TELEMETRY="true")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"  {section} {list(sizes)}: stopped after {timeout:.0f} s")
        return []
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        print(f"  {section} {list(sizes)} failed (exit {proc.returncode}):")
        print("  " + proc.stderr[-3000:].replace("\n", "\n  "))
        return []
    found: list[dict[str, Any]] = json.loads(lines[-1][len(MARK) :])
    return found


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return ""
    return f"{b / 2**20:,.1f} MiB" if b >= 2**20 else f"{b / 1024:,.0f} KiB"


def fmt_time(s: float) -> str:
    return f"{s * 1000:,.1f} ms" if s < 1 else f"{s:,.2f} s"


def report(section: str, rows: list[dict[str, Any]]) -> None:
    by_what: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_what.setdefault(r["what"], []).append(r)
    print(f"\n## {section}\n")
    print("| what | size | time | peak memory | other | exponent (fit; last step) |")
    print("|---|---:|---:|---:|---|---:|")
    for what, rs in by_what.items():
        sizes, times = [r["size"] for r in rs], [r["seconds"] for r in rs]
        exp = slope(sizes, times) if len(rs) > 1 else None
        step = slope(sizes[-2:], times[-2:]) if len(rs) > 1 else None
        for i, r in enumerate(rs):
            other = []
            if "requests" in r:
                other.append(f"{r['requests']} requests")
            if "snapshot_bytes" in r:
                ratio = r["peak_bytes"] / r["snapshot_bytes"]
                other.append(
                    f"snapshot {fmt_bytes(r['snapshot_bytes'])}; peak above the frames "
                    f"{ratio:.2f}x it (target <= 3x); process peak {fmt_bytes(r['rss_bytes'])}"
                )
            last = i == len(rs) - 1 and exp is not None
            shown = ""
            if last and exp is not None and step is not None:
                shown = f"{exp:.2f}; {step:.2f}" + (" (finding)" if exp > 1.1 else "")
            print(
                f"| {what} | {r['size']:,} | {fmt_time(r['seconds'])} | "
                f"{fmt_bytes(r.get('peak_bytes'))} | {'; '.join(other)} | {shown} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also time the promotion with mlci/registry/models.py as it was at this git revision",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sizes = [int(s) for s in args.sizes.split(",")]
        print(MARK + json.dumps(SECTIONS[args.child](sizes)))
        return
    print(machine_facts())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.against:
        os.environ["SCALE_AGAINST"] = args.against
    table = QUICK if args.quick else SIZES
    started = time.perf_counter()
    for section in args.only.split(","):
        sizes = table[section]
        t = time.perf_counter()
        if section in PER_PROCESS:
            rows = [r for n in sizes for r in child(section, [n], 600)]
        else:
            rows = child(section, sizes, 900)
        report(section, rows)
        print(
            f"\n({section}: {time.perf_counter() - t:.0f} s; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"
        )
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
