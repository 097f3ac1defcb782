"""Training and evaluation on the example: both backends, reproducibility, telemetry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlci.evaluation import slice_metrics
from mlci.example import copy_files, write_data
from mlci.training.gpu import GpuSampler


@pytest.fixture
def example(tmp_path: Path) -> Path:
    copy_files(tmp_path)
    write_data(tmp_path / "data" / "diabetes.csv")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ, MLCI_MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}")
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _train_eval(root: Path) -> str:
    for cmd in ("train", "evaluate"):
        proc = _run(root, cmd)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return (root / "metrics.json").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sklearn", "torch"])
def test_same_seed_gives_bit_identical_metrics(example: Path, backend: str) -> None:
    if backend == "torch":
        pytest.importorskip("torch")
        text = (example / "params.yaml").read_text().replace("backend: sklearn", "backend: torch")
        (example / "params.yaml").write_text(text)
    first = _train_eval(example)
    second = _train_eval(example)
    assert first == second
    metrics = json.loads(first)
    assert 0.5 < metrics["accuracy"] <= 1.0
    assert set(metrics["fairness"]["sex"]) == {
        "accuracy_gap",
        "demographic_parity_difference",
        "equal_opportunity_difference",
    }
    facts = json.loads((example / "reports" / "train.json").read_text())
    assert facts["backend"] == backend and facts["device"] == "cpu"
    assert facts["gpu"]["available"] is False
    roc = json.loads((example / "plots" / "roc.json").read_text())
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0} and roc[-1] == {"fpr": 1.0, "tpr": 1.0}


def test_slice_metrics_on_a_known_gap() -> None:
    y_true = [1, 1, 0, 0, 1, 1, 0, 0]
    pred = [1, 1, 0, 0, 1, 0, 1, 1]
    groups = {"g": ["a", "a", "a", "a", "b", "b", "b", "b"]}
    slices, gaps = slice_metrics(y_true, pred, groups, positive=1)
    assert slices["g"]["a"] == {"n": 4, "accuracy": 1.0, "positive_rate": 0.5, "tpr": 1.0}
    assert slices["g"]["b"] == {"n": 4, "accuracy": 0.25, "positive_rate": 0.75, "tpr": 0.5}
    assert gaps["g"] == {
        "accuracy_gap": 0.75,
        "demographic_parity_difference": 0.25,
        "equal_opportunity_difference": 0.5,
    }


def test_gpu_sampler_without_nvml_says_so_once_and_stops() -> None:
    sampler = GpuSampler(interval_s=0.01).start()
    summary = sampler.stop()
    try:
        import pynvml

        pynvml.nvmlInit()
        has_gpu = pynvml.nvmlDeviceGetCount() > 0
    except Exception:
        has_gpu = False
    if has_gpu:
        assert summary["available"] is True
    else:
        assert summary == {"available": False, "reason": summary["reason"]}
        assert summary["reason"].startswith("no GPU")
        assert sampler.samples == []


def test_bad_train_params(example: Path) -> None:
    text = (example / "params.yaml").read_text().replace("target: high_progression", "target: nope")
    (example / "params.yaml").write_text(text)
    proc = _run(example, "train")
    assert proc.returncode == 2
    assert "train.target 'nope' is not a column" in proc.stderr


@pytest.mark.slow
def test_torchrun_two_gloo_processes_write_one_set_of_outputs(example: Path) -> None:
    import os
    import sqlite3

    pytest.importorskip("torch")
    text = (example / "params.yaml").read_text().replace("backend: sklearn", "backend: torch")
    (example / "params.yaml").write_text(text)
    env = dict(
        os.environ,
        MLCI_MLFLOW_TRACKING_URI=f"sqlite:///{example / 'mlflow.db'}",
        OMP_NUM_THREADS="1",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "mlci",
            "train",
        ],
        cwd=example,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rank 1 of 2" in proc.stdout
    assert proc.stdout.count("MLflow run ") == 1
    facts = json.loads((example / "reports" / "train.json").read_text())
    assert facts["world_size"] == 2 and facts["backend"] == "torch"
    runs = sqlite3.connect(example / "mlflow.db").execute("select count(*) from runs").fetchone()
    assert runs == (1,)
    assert _run(example, "evaluate").returncode == 0
    assert json.loads((example / "metrics.json").read_text())["accuracy"] > 0.5


@pytest.mark.slow
def test_api_for_own_training_scripts(example: Path) -> None:
    import os

    script = example / "own_train.py"
    script.write_text(
        "import random\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from mlci import api\n"
        "with api.training_run(seed=7, params={'C': 1.0}, data=['data/diabetes.csv']) as run:\n"
        "    draw = random.random()\n"
        "    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])\n"
        "    run.log_metrics({'accuracy': 0.75, 'nested': {'auc': 0.8}, 'draw': draw})\n"
        "    run.log_model(model)\n"
        "    print(run.run_id)\n"
        "api.write_plot('plots/own.json', [{'x': 1, 'y': 2}])\n"
    )
    env = dict(os.environ, MLCI_MLFLOW_TRACKING_URI=f"sqlite:///{example / 'mlflow.db'}")
    subprocess.run(["git", "add", "-A"], cwd=example, check=True)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=example, check=True)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=example,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.strip().splitlines()[-1]
    metrics = json.loads((example / "metrics.json").read_text())
    import random

    random.seed(7)
    assert metrics == {"accuracy": 0.75, "nested": {"auc": 0.8}, "draw": random.random()}
    assert json.loads((example / "plots" / "own.json").read_text()) == [{"x": 1, "y": 2}]
    from mlflow.tracking import MlflowClient

    run = MlflowClient(env["MLCI_MLFLOW_TRACKING_URI"]).get_run(run_id)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=example, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert run.data.tags["mlci.git_sha"] == sha
    assert run.data.tags["mlci.data.data/diabetes.csv"]
    assert run.data.metrics["nested.auc"] == 0.8
    assert run.data.params["C"] == "1.0"
