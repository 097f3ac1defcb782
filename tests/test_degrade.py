"""A check that degrades instead of stopping (issue 15): outputs the DVC remote lacks are
rebuilt by `dvc repro` with a warning; lacking source data is exit 5 with the params diff and
the data checks still in the report; a failing stage is exit 7 with its own words; a metrics
file that .gitignore keeps out of git is named as the reason there is no baseline.

The project is laid out unlike the bundled example: its own scripts (`python src/prep.py`,
`python src/train.py`), params in `conf/params.yaml`, metrics in `out/eval/`, no `.mlci/` in
its .gitignore. Built once per module; each test works in a fresh clone of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git

pytestmark = pytest.mark.slow

PREP = """import os
os.makedirs("data/prep", exist_ok=True)
rows = open("data/raw.csv").read().splitlines()
open("data/prep/clean.csv", "w").write("\\n".join(rows[:1] + rows[:0:-1]) + "\\n")
"""
TRAIN = """import json, os, yaml
k = yaml.safe_load(open("conf/params.yaml"))["train"]["k"]
rows = open("data/prep/clean.csv").read().splitlines()[1:]
os.makedirs("out/eval", exist_ok=True)
open("out/model.bin", "w").write(f"k={k} rows={len(rows)}")
json.dump({"acc": 0.5 + k / 10, "rows": len(rows)}, open("out/eval/metrics.json", "w"))
"""
DVC_YAML = """stages:
  prep:
    cmd: python src/prep.py
    deps: [src/prep.py, data/raw.csv]
    outs: [data/prep/clean.csv]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/prep/clean.csv]
    params:
      - conf/params.yaml:
          - train.k
    outs: [out/model.bin]
    metrics:
      - out/eval/metrics.json:
          cache: false
"""
SETTINGS = """mlci:
  validate:
    data/prep/clean.csv: schemas/clean.yaml
  gates:
    acc: {direction: higher, abs_tol: 0.5}
"""


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
        timeout=300,
    )


def mlci(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(cwd, sys.executable, "-m", "mlci", *args, **env)


def dvc(cwd: Path, *args: str) -> str:
    proc = _run(cwd, sys.executable, "-m", "dvc", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """work/{origin, remote}: main reproduced and pushed; branch `pr` sets train.k 1 -> 2."""
    import pandera.pandas as pa

    work = tmp_path_factory.mktemp("degrade")
    p = work / "origin"
    (p / "src").mkdir(parents=True)
    (p / "conf").mkdir()
    (p / "data").mkdir()
    (p / "schemas").mkdir()
    git(p, "init", "-q")
    dvc(p, "init", "-q")
    dvc(p, "remote", "add", "-d", "store", str(work / "remote"))
    (p / "src" / "prep.py").write_text(PREP)
    (p / "src" / "train.py").write_text(TRAIN)
    (p / "conf" / "params.yaml").write_text("train:\n  k: 1\n")
    (p / "params.yaml").write_text(SETTINGS)
    (p / "dvc.yaml").write_text(DVC_YAML)
    (p / "data" / "raw.csv").write_text("x,y\n1,2\n3,4\n5,6\n")
    schema = pa.DataFrameSchema({"x": pa.Column(int, pa.Check.ge(0)), "y": pa.Column(int)})
    (p / "schemas" / "clean.yaml").write_text(schema.to_yaml() or "")
    dvc(p, "add", "-q", "data/raw.csv")
    dvc(p, "repro", "-q")
    dvc(p, "push", "-q")
    git(p, "add", "-A")
    git(p, "commit", "-qm", "baseline")
    git(p, "checkout", "-qb", "pr")
    (p / "conf" / "params.yaml").write_text("train:\n  k: 2\n")
    git(p, "commit", "-qam", "k=2")
    git(p, "checkout", "-q", "main")
    return work


def _clone(built: Path, tmp_path: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """A CI-like clone of branch `pr` with its own copy of the remote, minus the objects of
    ``drop`` (paths whose hashes dvc.lock / *.dvc name)."""
    remote = tmp_path / "remote"
    shutil.copytree(built / "remote", remote)
    clone = tmp_path / "ci"
    git(tmp_path, "clone", "-q", "-b", "pr", str(built / "origin"), str(clone))
    git(clone, "fetch", "-q", "origin", "main:main")
    dvc(clone, "remote", "modify", "--local", "store", "url", str(remote))
    for path in drop:
        md5 = _md5_of(clone, path)
        (remote / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    return clone


def _md5_of(root: Path, path: str) -> str:
    import yaml

    dvc_file = root / f"{path}.dvc"
    if dvc_file.exists():
        return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return str(out["md5"])
    raise AssertionError(f"{path} is in no dvc.lock or .dvc file")


def _report(root: Path) -> str:
    return (root / ".mlci" / "report.md").read_text(encoding="utf-8")


def _file_md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def test_outputs_the_remote_lacks_are_rebuilt_with_a_warning(built: Path, tmp_path: Path) -> None:
    """Today: exit 5, 'DVC remote lacks data', a report with no metrics and no params."""
    ci = _clone(built, tmp_path, drop=("data/prep/clean.csv", "out/model.bin"))
    proc = mlci(ci, "run", "--base", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(ci)
    assert "lacks 2 output(s): `data/prep/clean.csv`, `out/model.bin`" in report
    assert "They were rebuilt here by `dvc repro`" in report and "`dvc push`" in report
    # the rebuilt outputs are what dvc.lock now records, and DVC sees nothing to do
    for path in ("data/prep/clean.csv", "out/model.bin"):
        assert _md5_of(ci, path) == _file_md5(ci / path)
    assert "up to date" in dvc(ci, "status")
    # the report's numbers are DVC's own diff against main
    diff = json.loads(dvc(ci, "metrics", "diff", "main", "--json"))
    acc = diff["out/eval/metrics.json"]["acc"]
    assert f"| `acc` | {acc['old']:.4f} | {acc['new']:.4f} |" in report
    params = json.loads(dvc(ci, "params", "diff", "main", "--json"))
    k = params["conf/params.yaml"]["train.k"]
    assert (k["old"], k["new"]) == (1, 2)
    assert f"| `conf/params.yaml:train.k` | {k['old']} | {k['new']} |" in report
    assert "| `data/prep/clean.csv` |" in report  # validated after the rebuild
    # no GPU row for a project that does not use mlci's trainer; .mlci/ stays out of git
    assert "| GPU |" not in report
    status = git(ci, "status", "--porcelain", "--untracked-files=all").split("\n")
    assert sorted(s[3:] for s in status if s) == ["dvc.lock", "out/eval/metrics.json"]


def test_source_data_the_remote_lacks_is_exit_5_and_the_report_keeps_the_rest(
    built: Path, tmp_path: Path
) -> None:
    """Today: exit 5 and a report without the params diff or the data checks."""
    ci = _clone(built, tmp_path, drop=("data/raw.csv",))
    proc = mlci(ci, "run", "--base", "main")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "lacks data for data/raw.csv, which no stage of the pipeline can rebuild" in line
    assert "fix: run `dvc push`" in line
    report = _report(ci)
    assert "| `conf/params.yaml:train.k` | 1 | 2 |" in report
    assert "### Data validation" in report and "| `data/prep/clean.csv` |" in report
    assert "; fix: run &#96;dvc push&#96; where the data was added" in report
    assert "dvc.lock" not in git(ci, "status", "--porcelain")  # nothing ran on missing data


def test_a_failing_stage_is_exit_7_with_its_command_status_and_stderr(
    built: Path, tmp_path: Path
) -> None:
    """A stage needing `PYTHONPATH=.`. Today: exit 1 ('a bug in mlci') and only 'stage
    failed' in the report; the cause was in the job log alone."""
    ci = _clone(built, tmp_path)
    dvc(ci, "pull", "-q")
    (ci / "lib").mkdir()
    (ci / "lib" / "__init__.py").write_text("")
    train = ci / "src" / "train.py"
    train.write_text(
        "import os, sys\nsys.stderr.write('token is ' + os.environ['DEPLOY_TOKEN'] + '\\n')\n"
        "import lib\n" + TRAIN
    )
    git(ci, "add", "-A")
    git(ci, "commit", "-qm", "use lib")
    proc = mlci(ci, "run", "--no-pull", "--base", "main", DEPLOY_TOKEN="s3cr3t-value")
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert "ModuleNotFoundError: No module named 'lib'" in proc.stderr  # live in the job log
    line = proc.stderr.strip().splitlines()[-1]
    assert "error: pipeline stage failed: DVC stage 'train' (`python src/train.py`)" in line
    assert "exited with 1: ModuleNotFoundError" in line
    report = _report(ci)
    assert "- command: `python src/train.py`" in report
    assert "- exit status: 1" in report
    assert "token is &#42;&#42;&#42;" in report and "s3cr3t-value" not in report
    assert "PYTHONPATH=. python src/train.py" in report  # the fix, whole
    assert "| `conf/params.yaml:train.k` | 1 | 2 |" in report


def test_a_gitignored_metrics_file_is_named_as_why_there_is_no_baseline(
    built: Path, tmp_path: Path
) -> None:
    """Today: 'no baseline: main has no metrics yet', as if main had never measured."""
    ci = _clone(built, tmp_path)
    git(ci, "checkout", "-q", "main")
    (ci / ".gitignore").write_text("# mine\nmetrics.json\n")
    git(ci, "rm", "-q", "--cached", "out/eval/metrics.json")
    git(ci, "add", ".gitignore")
    git(ci, "commit", "-qam", "metrics out of git")
    git(ci, "checkout", "-qb", "pr2")
    dvc(ci, "pull", "-q")
    dvc(ci, "repro", "-q")
    rule = git(ci, "check-ignore", "-v", "out/eval/metrics.json").split("\t")[0]
    assert rule.startswith(".gitignore:")
    proc = mlci(ci, "report", "--base", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(ci)
    source, line, pattern = rule.split(":", 2)
    assert f"the .gitignore rule {source}:{line}: {pattern} excludes it" in report
    assert "metrics file out/eval/metrics.json is declared with cache: false" in report
    assert "has no metrics yet" not in report
