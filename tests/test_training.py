"""Training and evaluation: both backends, both tasks, users' own torch modules,
reproducibility, telemetry and what the MLflow run records."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlci.example import copy_files, write_data
from mlci.training.evaluation import slice_metrics
from mlci.training.gpu import GpuSampler

from conftest import Workspace, git


@pytest.fixture
def example(tmp_path: Path) -> Path:
    copy_files(tmp_path)
    write_data(tmp_path / "data" / "diabetes.csv")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def _run(root: Path, *args: str, script: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m mlci ARGS`` in ``root``; with ``script``, the installed ``mlci`` script, which
    (unlike ``-m``) does not put the working directory on ``sys.path``."""
    import os

    env = dict(os.environ, MLCI_MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}")
    command = (
        [str(Path(sys.executable).parent / "mlci")] if script else [sys.executable, "-m", "mlci"]
    )
    return subprocess.run(
        [*command, *args],
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
    pr = json.loads((example / "plots" / "pr.json").read_text())
    assert pr[0] == {"recall": 0.0, "precision": 1.0} and pr[-1]["recall"] == 1.0
    assert len(pr) <= 200 and len(roc) <= 200


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
    assert run.data.tags["mlci.lineage.data.data/diabetes.csv"]
    assert run.data.metrics["nested.auc"] == 0.8
    assert run.data.params["C"] == "1.0"


# --- regression ------------------------------------------------------------------------------


def _regression_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """y = 1000 + 40 x1 - 25 x2 (+30 in the south) + noise: large units, known signal."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    group = rng.choice(["north", "south"], size=n)
    noise = rng.normal(scale=2.0, size=n)
    y = 1000 + 40 * x1 - 25 * x2 + np.where(group == "south", 30.0, 0.0) + noise
    return pd.DataFrame({"id": range(n), "x1": x1, "x2": x2, "group": group, "y": y})


def _project(root: Path, frame: pd.DataFrame, train: dict[str, Any], slice_by: str) -> Path:
    frame.to_csv(root / "data.csv", index=False)
    params = {
        "train": {"data": "data.csv", "target": "y", "drop": ["id"], "seed": 0, **train},
        "evaluate": {"slice_by": [slice_by]},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def test_regression_split_does_not_stratify(tmp_path: Path) -> None:
    from sklearn.model_selection import train_test_split

    from mlci.training.base import train_params
    from mlci.training.run import load_split

    frame = _regression_frame(300)
    frame["y"] = np.repeat(np.arange(60), 5)  # integer target, every value 5 times
    _project(tmp_path, frame, {"task": "regression", "test_size": 0.5}, "group")
    split = load_split(tmp_path, train_params(tmp_path))
    plain = train_test_split(frame.index, test_size=0.5, random_state=0)[1]
    stratified = train_test_split(frame.index, test_size=0.5, random_state=0, stratify=frame.y)[1]
    assert list(split.x_test.index) == list(plain)
    assert list(plain) != list(stratified)


def test_task_param_defaults_and_mismatched_estimators(tmp_path: Path) -> None:
    from mlci.errors import ConfigError
    from mlci.training.base import TrainParams, train_params
    from mlci.training.sklearn import SklearnTrainer

    _project(tmp_path, _regression_frame(40), {}, "group")
    assert train_params(tmp_path).task == "classification"
    _project(tmp_path, _regression_frame(40), {"task": "regression"}, "group")
    assert train_params(tmp_path).estimator == "sklearn.ensemble.RandomForestRegressor"
    _project(tmp_path, _regression_frame(40), {"task": "regresion"}, "group")
    with pytest.raises(ConfigError, match="task 'regresion' is not a task"):
        train_params(tmp_path)
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    clf = TrainParams(data="-", target="-", task="regression", estimator=TrainParams.estimator)
    with pytest.raises(ConfigError, match=r"is a classifier but train\.task is regression"):
        SklearnTrainer().fit(x, y, clf)
    reg = TrainParams(data="-", target="-", estimator="sklearn.linear_model.Ridge")
    with pytest.raises(ConfigError, match=r"is a regressor but train\.task is classification"):
        SklearnTrainer().fit(x, y > 4, reg)


@pytest.mark.slow
def test_sklearn_regression_writes_error_metrics_slices_and_residuals(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from mlci.training.evaluation import regression_metrics

    train = {"task": "regression", "estimator": "sklearn.linear_model.Ridge"}
    root = _project(tmp_path, _regression_frame(300), {**train, "params": {"alpha": 1.0}}, "group")
    stale = root / "plots" / "roc.json"
    stale.parent.mkdir()
    stale.write_text("[]")
    _train_eval(root)
    metrics = json.loads((root / "metrics.json").read_text())
    assert set(metrics) == {"mae", "rmse", "r2", "fairness", "slices"}
    assert metrics["r2"] > 0.99 and metrics["mae"] < 3.0
    assert metrics["mae"] <= metrics["rmse"] < 2 * metrics["mae"]  # RMSE weighs large errors
    per = metrics["slices"]["group"]
    assert set(per) == {"north", "south"} and per["north"]["n"] + per["south"]["n"] == 75
    gap = abs(per["north"]["mae"] - per["south"]["mae"])
    assert metrics["fairness"] == {"group": {"mae_gap": pytest.approx(gap)}}
    rows = json.loads((root / "plots" / "residuals.json").read_text())
    assert len(rows) == 75 and set(rows[0]) == {"actual", "predicted"}
    again = regression_metrics([r["actual"] for r in rows], [r["predicted"] for r in rows])
    assert again["mae"] == pytest.approx(metrics["mae"], abs=1e-5)
    for name in ("confusion.json", "roc.json", "pr.json"):
        assert not (root / "plots" / name).exists(), name
    bundle = pickle.loads((root / "models" / "model.pkl").read_bytes())
    assert bundle["task"] == "regression" and "classes" not in bundle
    assert type(bundle["model"]).__name__ == "Ridge"
    facts = json.loads((root / "reports" / "train.json").read_text())
    assert facts["task"] == "regression" and facts["estimator"] == "sklearn.linear_model.Ridge"
    run = MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_run(facts["mlflow_run_id"])
    assert run.data.metrics["mae"] == pytest.approx(metrics["mae"])
    assert run.data.metrics["fairness.group.mae_gap"] == pytest.approx(gap)
    assert run.data.params["task"] == "regression" and run.data.tags["mlci.task"] == "regression"


def test_evaluate_refuses_a_model_trained_for_another_task(tmp_path: Path) -> None:
    from mlci.errors import ConfigError
    from mlci.settings.config import load
    from mlci.training.run import evaluate

    root = _project(tmp_path, _regression_frame(40), {"task": "regression"}, "group")
    (root / "models").mkdir()
    bundle = {"backend": "sklearn", "task": "classification", "features": [], "model": None}
    (root / "models" / "model.pkl").write_bytes(pickle.dumps(bundle))
    with pytest.raises(ConfigError, match=r"trained for classification but train\.task is regr"):
        evaluate(root, load(root))


# --- torch: regression, users' modules, determinism --------------------------------------------

USER_NETS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, n_features, n_outputs, width=8):
        super().__init__()
        self.width = width
        self.body = nn.Sequential(
            nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, n_outputs)
        )

    def forward(self, x):
        return self.body(x)


class Wide(Net):
    def __init__(self, n_features, n_outputs):
        super().__init__(n_features, n_outputs + 1)


class Scatter(Net):
    """Uses put_, which has no deterministic implementation."""

    def forward(self, x):
        torch.zeros(1).put_(torch.tensor([0]), torch.tensor([1.0]))
        return self.body(x)


NotAModule = dict
'''


@pytest.fixture
def user_nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package ``usernets`` with ``usernets.models``, importable during the test."""
    pytest.importorskip("torch")
    pkg = tmp_path / "usernets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(USER_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] == "usernets"]:
        del sys.modules[name]


@pytest.fixture
def determinism(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Turn torch's process-wide deterministic mode back off after the test."""
    torch = pytest.importorskip("torch")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.benchmark = before[1]


def _torch_params(task: str = "classification", **torch_cfg: Any) -> Any:
    from mlci.training.base import TrainParams

    cfg = {"hidden": [16], "epochs": 300, "lr": 0.05, "patience": 50, **torch_cfg}
    return TrainParams(data="-", target="-", backend="torch", task=task, torch=cfg)


def test_torch_regression_predicts_in_target_units() -> None:
    pytest.importorskip("torch")
    from mlci.training.evaluation import regression_metrics
    from mlci.training.torch import TorchTrainer

    frame = pd.get_dummies(_regression_frame(400), columns=["group"], dtype=float)
    x, y = frame.drop(columns=["id", "y"]), frame["y"]
    trainer = TorchTrainer()
    model = trainer.fit(x[:300], y[:300], _torch_params("regression"))
    assert model.task == "regression" and not hasattr(model, "classes_")
    assert float(model.target_mean) == pytest.approx(y[:300].mean(), abs=5)
    assert float(model.target_std) == pytest.approx(y[:300].std(), rel=0.1)
    pred = trainer.predict(model, x[300:])
    assert pred.shape == (100,)
    scores = regression_metrics(y[300:], pred)
    assert scores["r2"] > 0.95 and scores["mae"] < 10, scores


def test_torch_regression_without_target_standardisation_keeps_raw_units() -> None:
    pytest.importorskip("torch")
    from mlci.training.torch import TorchTrainer

    frame = pd.get_dummies(_regression_frame(100), columns=["group"], dtype=float)
    params = _torch_params("regression", standardize_target=False, epochs=5)
    model = TorchTrainer().fit(frame.drop(columns=["id", "y"]), frame["y"], params)
    assert float(model.target_mean) == 0.0 and float(model.target_std) == 1.0


@pytest.mark.parametrize("spec", ["usernets.models:Net", "usernets.models.Net"])
def test_torch_trains_the_users_module_on_standardised_inputs(user_nets: Path, spec: str) -> None:
    from mlci.training.torch import TorchTrainer

    rng = np.random.default_rng(1)
    x = rng.normal(loc=100.0, scale=5.0, size=(300, 2))  # would saturate tanh unstandardised
    y = np.where(x[:, 0] - x[:, 1] > 0, "up", "down")
    trainer = TorchTrainer()
    model = trainer.fit(x, y, _torch_params(module=spec, module_args={"width": 4}))
    assert type(model.net).__module__ == "usernets.models" and type(model.net).__name__ == "Net"
    assert model.net.width == 4
    assert np.allclose(model.mean.numpy(), 100.0, atol=1.5)
    assert np.allclose(model.std.numpy(), 5.0, rtol=0.2)
    assert list(model.classes_) == ["down", "up"]
    assert (trainer.predict(model, x) == y).mean() > 0.9
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(trainer.predict_proba(restored, x), trainer.predict_proba(model, x))


@pytest.mark.parametrize(
    ("spec", "args", "message"),
    [
        ("usernets.missing:Net", {}, "cannot be imported: No module named 'usernets.missing'"),
        ("usernets.models:Nope", {}, "usernets.models has no Nope"),
        ("usernets.models:NotAModule", {}, "is not a torch.nn.Module subclass"),
        ("Net", {}, "is not an import path"),
        ("usernets.models:Net", {"depth": 3}, "cannot be constructed: .*'depth'"),
        ("usernets.models:Wide", {}, r"returns shape \(2, 3\) for 2 rows, not \(2, 2\)"),
    ],
)
def test_torch_module_errors_name_the_problem(
    user_nets: Path, spec: str, args: dict[str, Any], message: str
) -> None:
    from mlci.errors import ConfigError
    from mlci.training.torch import TorchTrainer

    x, y = np.zeros((20, 3)), np.arange(20) % 2
    with pytest.raises(ConfigError, match=message):
        TorchTrainer().fit(x, y, _torch_params(module=spec, module_args=args, epochs=1))


def test_torch_deterministic_switches_torch_to_deterministic_kernels(
    user_nets: Path, determinism: None
) -> None:
    import os

    import torch

    from mlci.errors import ConfigError
    from mlci.training.torch import TorchTrainer

    x, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    scatter = {"module": "usernets.models:Scatter", "epochs": 2}
    TorchTrainer().fit(x, y, _torch_params(**scatter))  # fine without the flag
    assert not torch.are_deterministic_algorithms_enabled()
    first = TorchTrainer().fit(x, y, _torch_params(deterministic=True, epochs=20))
    assert torch.are_deterministic_algorithms_enabled()
    if torch.cuda.is_available():
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.backends.cudnn.benchmark is False
    second = TorchTrainer().fit(x, y, _torch_params(deterministic=True, epochs=20))
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    with pytest.raises(ConfigError, match="deterministic: put_ does not have a deterministic"):
        TorchTrainer().fit(x, y, _torch_params(deterministic=True, **scatter))


def test_torch_params_are_checked(tmp_path: Path) -> None:
    from mlci.errors import ConfigError
    from mlci.training.base import train_params

    frame = _regression_frame(40)
    cases = [
        ({"hiden": [8]}, "train.torch: unknown key 'hiden'", "did you mean 'hidden'?"),
        ({"deterministic": "yes"}, "train.torch.deterministic must be true or false", ""),
        ({"module_args": [1]}, "train.torch.module_args must be a mapping", ""),
        ({"epochs": "many"}, "train.torch: hidden, epochs and patience must be integers", ""),
    ]
    for torch_cfg, message, fix in cases:
        _project(tmp_path, frame, {"backend": "torch", "torch": torch_cfg}, "group")
        with pytest.raises(ConfigError) as info:
            train_params(tmp_path)
        assert message in str(info.value) and fix in (info.value.fix or "")


@pytest.mark.slow
def test_torch_regression_with_own_module_through_the_mlci_script(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pkg = tmp_path / "usernets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(USER_NETS)
    torch_cfg = {
        "module": "usernets.models:Net",
        "module_args": {"width": 16},
        "epochs": 300,
        "lr": 0.05,
        "patience": 50,
        "deterministic": True,
    }
    train = {"task": "regression", "backend": "torch", "torch": torch_cfg}
    root = _project(tmp_path, _regression_frame(300), train, "group")
    for cmd in ("train", "evaluate"):
        proc = _run(root, cmd, script=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((root / "metrics.json").read_text())
    assert metrics["r2"] > 0.95, metrics
    assert set(metrics["fairness"]["group"]) == {"mae_gap"}
    assert len(json.loads((root / "plots" / "residuals.json").read_text())) == 75
    facts = json.loads((root / "reports" / "train.json").read_text())
    assert facts["estimator"] == "usernets.models:Net" and facts["task"] == "regression"


# --- what the MLflow run records -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("through", ["the stage", "the recorder"])
def test_mlflow_run_records_params_metrics_lineage_and_model(
    workspace: Workspace, through: str
) -> None:
    """The same run, field by field, whether ``mlci train`` records it beside the fit or
    through the recorder ``mlci run`` starts (and then ``mlci evaluate`` logs through it too)."""
    import contextlib
    import hashlib
    import platform

    import mlflow
    import sklearn
    from mlflow.tracking import MlflowClient

    from mlci.training import recorder
    from mlci.verdict.metrics import flatten

    project = workspace.project
    # a worker process when a CPU is free, else the training process itself
    said = ["(recorded by a worker process)", "(recorded by the training process)"]
    with contextlib.ExitStack() as stack:
        if through == "the recorder":
            stack.enter_context(recorder.serving(workspace.tracking_uri, "mlci", project))
            said = ["(recorded by mlci run's recorder)"]
        for cmd in ("train", "evaluate"):
            proc = workspace.mlci(project, cmd, MLCI_PR_NUMBER="17")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            if cmd == "train":
                assert any(line in proc.stdout for line in said), proc.stdout
    facts = json.loads((project / "reports" / "train.json").read_text())
    client = MlflowClient(workspace.tracking_uri)
    run = client.get_run(facts["mlflow_run_id"])
    sha = git(project, "rev-parse", "HEAD").strip()
    assert run.info.status == "FINISHED" and run.info.run_name == f"sklearn-{sha[:8]}"
    assert run.data.params == {
        "seed": "42",
        "test_size": "0.3",
        "task": "classification",
        "backend": "sklearn",
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params.n_estimators": "200",
        "params.max_depth": "3",
        "params.min_samples_leaf": "5",
    }
    metrics = json.loads((project / "metrics.json").read_text())
    expected = {k: v for k, v in flatten(metrics).items() if not k.startswith("slices.")}
    assert {"accuracy", "roc_auc", "log_loss", "fairness.sex.accuracy_gap"} <= set(expected)
    assert run.data.metrics == pytest.approx(expected)
    tags = {k: v for k, v in run.data.tags.items() if k.startswith("mlci.")}
    data_md5 = hashlib.md5((project / "data" / "diabetes.csv").read_bytes()).hexdigest()
    gpu = facts["gpu"]
    assert tags["mlci.git_sha"] == sha
    assert tags["mlci.branch"] == "main"
    assert tags["mlci.pr"] == "17"
    assert tags["mlci.backend"] == "sklearn" and tags["mlci.task"] == "classification"
    assert tags["mlci.device"] == "cpu"
    assert tags["mlci.lineage.data.data/diabetes.csv"] == data_md5
    assert tags["mlci.schema"] == "1"
    assert tags["mlci.gpu"] == (gpu["gpus"][0]["name"] if gpu["available"] else gpu["reason"])
    assert tags["mlci.env.python"] == platform.python_version()
    assert tags["mlci.env.platform"] == platform.platform()
    assert tags["mlci.env.scikit-learn"] == sklearn.__version__
    assert tags["mlci.env.mlflow"] == mlflow.__version__
    assert {"mlci.env.numpy", "mlci.env.pandas", "mlci.env.mlci"} <= set(tags)
    mlflow.set_tracking_uri(workspace.tracking_uri)
    logged = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    bundle = pickle.loads((project / "models" / "model.pkl").read_bytes())
    rows = pd.read_csv(project / "data" / "diabetes.csv").head(20)
    x = pd.get_dummies(rows.drop(columns=["high_progression", "patient_id"]), dtype=float)
    x = x.reindex(columns=bundle["features"], fill_value=0.0)
    assert np.array_equal(logged.predict_proba(x), bundle["model"].predict_proba(x))
