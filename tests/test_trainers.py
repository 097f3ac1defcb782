"""The backend table, the typed training facts and their path, and the MLflow worker's model
files (what `mlci train` logs without importing MLflow in the training process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mlci.errors import ConfigError, MlflowError
from mlci.registry import tags as vocab
from mlci.settings.config import load


def test_backend_modules_import_alone_without_a_circle() -> None:
    """Each backend module imports first in a fresh interpreter, and none imports base.py."""
    code = (
        "import sys, mlci.training.sklearn, mlci.training.backends as b;"
        "assert 'mlci.training.base' not in sys.modules, 'base imported';"
        "print(sorted(b.BACKENDS))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['sklearn', 'torch']"
    light = "import sys, mlci.training; print('sklearn' in sys.modules, 'mlflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", light], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]


def test_unknown_backend_suggests_and_aliases_resolve(tmp_path: Path) -> None:
    from mlci.training.backends import backend, get_trainer
    from mlci.training.base import train_params

    doc = {"train": {"data": "d.csv", "target": "y", "backend": "sklern"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        train_params(tmp_path)
    assert "train.backend 'sklern' is not a backend" in str(info.value)
    assert info.value.fix == "did you mean 'sklearn'?"
    assert backend("pytorch").name == "torch"
    assert get_trainer("scikit-learn").name == "sklearn"


def test_train_section_values_are_typed(tmp_path: Path) -> None:
    from mlci.training.base import train_params

    for train, message in [
        ({"seed": 4.5}, "train.seed: expected a whole number"),
        ({"test_size": "a lot"}, "train.test_size: expected a number"),
        ({"params": [1]}, "train.params must be a mapping"),
        ({"torch": {"lr": "fast"}}, "train.torch.lr: expected a number"),
    ]:
        doc = {"train": {"data": "d.csv", "target": "y", **train}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(doc))
        with pytest.raises(ConfigError, match=message):
            train_params(tmp_path)


DVC_YAML = """
stages:
  fit:
    cmd: python fit.py
    outs:
      - out/model.bin
      - out/facts.json:
          cache: false
    metrics:
      - out/scores.json:
          cache: false
"""


def test_facts_path_comes_from_dvc_yaml_then_params(tmp_path: Path) -> None:
    from mlci.training.facts import TrainingFacts, facts_path
    from mlci.training.facts import load as load_facts

    params = {"train": {"data": "d.csv", "target": "y", "model_path": "out/model.bin"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    settings = load(tmp_path)
    assert load_facts(tmp_path, settings) is None
    facts = TrainingFacts(backend="sklearn", duration_s=1.5, mlflow_run_id="abc")
    facts.write(tmp_path / "out" / "facts.json")
    found = load_facts(tmp_path, settings)
    assert found is not None and found.mlflow_run_id == "abc" and found.duration_s == 1.5
    assert found.gpu.available is False
    params["train"]["facts_path"] = "elsewhere.json"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    from mlci.training.base import train_params

    assert facts_path(tmp_path, train_params(tmp_path)) == "elsewhere.json"
    assert load_facts(tmp_path, load(tmp_path)) is None


def test_facts_round_trip_keeps_the_report_shape_and_unknown_keys() -> None:
    from mlci.training.facts import TrainingFacts

    raw = {
        "backend": "torch",
        "device": "cuda:0",
        "duration_s": 12,
        "gpu": {
            "available": True,
            "gpus": [{"index": 0, "name": "H100"}],
            "samples": 3,
            "util_mean": 80.0,
            "util_peak": 99,
            "mem_peak_mb": 1024.0,
            "energy_wh": 1.5,
            "gpu_hours": 0.01,
        },
        "mlflow_run_id": "r1",
        "training": {"ran": True},  # written by another stage: kept as it is
        "rows_train": "many",  # wrong type: dropped, not trusted
    }
    facts = TrainingFacts.from_dict(raw)
    assert facts.duration_s == 12.0 and facts.rows_train is None
    assert facts.gpu.name() == "H100" and facts.gpu.util_peak == 99.0
    out = facts.to_dict()
    assert out["gpu"] == {**raw["gpu"], "util_peak": 99.0}
    assert out["training"] == {"ran": True} and out["backend"] == "torch"
    assert json.loads(json.dumps(out)) == out


def _log_exported(trainer: object, model: object, tmp_path: Path) -> str:
    """Export in this process as the training does, log as the worker does; the run id."""
    import mlflow

    from mlci.training import worker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    files_dir = tmp_path / "export"
    files_dir.mkdir()
    trainer.export_model(model, files_dir).save(files_dir)  # type: ignore[attr-defined]
    experiment = worker.prepare(uri, "t", tmp_path)
    ids = worker.record(
        experiment, uri, {"run_name": "n", "params": {}, "tags": {}, "model": str(files_dir)}
    )
    mlflow.set_tracking_uri(uri)
    return str(ids["mlflow_run_id"])


def test_exported_sklearn_model_loads_and_registers(tmp_path: Path) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from mlci.training.sklearn import SklearnTrainer

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    model = LogisticRegression().fit(x, [0, 1, 0, 1])
    run_id = _log_exported(SklearnTrainer(), model, tmp_path)
    uri = f"runs:/{run_id}/model"
    assert np.array_equal(mlflow.sklearn.load_model(uri).predict_proba(x), model.predict_proba(x))
    assert list(mlflow.pyfunc.load_model(uri).predict(x)) == [0, 1, 0, 1]
    version = mlflow.register_model(uri, "m")
    loaded = mlflow.sklearn.load_model(f"models:/m/{version.version}")
    assert np.array_equal(loaded.predict(x), model.predict(x))
    info = mlflow.models.get_model_info(uri)
    assert info.flavors["sklearn"]["serialization_format"] == "cloudpickle"
    local = Path(mlflow.artifacts.download_artifacts(uri))
    assert (local / "requirements.txt").read_text().splitlines()[1].startswith("scikit-learn==")
    assert not (local / "mlci-model.json").exists()


def test_exported_torch_model_loads(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import mlflow

    from mlci.training.torch import TabularMLP, TabularModel, TorchTrainer

    model = TabularModel(TabularMLP(3, 2, (4,)), 3, "classification").eval()
    run_id = _log_exported(TorchTrainer(), model, tmp_path)
    loaded = mlflow.pytorch.load_model(f"runs:/{run_id}/model")
    x = torch.randn(5, 3)
    assert torch.equal(loaded(x), model(x))
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    assert info.flavors["python_function"]["loader_module"] == "mlflow.pytorch"


def test_worker_errors_come_back_as_the_same_error(tmp_path: Path) -> None:
    from mlci.training.worker import Worker

    (tmp_path / "export").mkdir()
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    worker = Worker.start(f"sqlite:///{blocked}/mlflow.db", "e", tmp_path)
    with pytest.raises(MlflowError, match=r"MLflow at sqlite:///.*not-a-dir/mlflow\.db failed"):
        worker.finish("n", {}, {}, tmp_path / "export")
    aborted = Worker.start(f"sqlite:///{tmp_path / 'ok.db'}", "e", tmp_path)
    aborted.abort()  # a failed training: nothing recorded, no store created yet or no run
    assert aborted.proc.returncode is not None
    if (tmp_path / "ok.db").exists():
        import sqlite3

        assert sqlite3.connect(tmp_path / "ok.db").execute(
            "select count(*) from runs"
        ).fetchone() == (0,)


def test_in_process_recording_matches_the_worker(tmp_path: Path) -> None:
    """With no CPU to spare, the same run is recorded in process: params, tags, model."""
    import mlflow
    from sklearn.dummy import DummyClassifier

    from mlci.training import worker
    from mlci.training.sklearn import SklearnTrainer

    assert isinstance(worker.spare_cpus(), float)
    export = tmp_path / "export"
    export.mkdir()
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    SklearnTrainer().export_model(model, export).save(export)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ids = worker.InProcess(uri, "e", tmp_path).finish("n", {"seed": 1}, {vocab.TASK: "t"}, export)
    run = mlflow.tracking.MlflowClient(uri).get_run(ids["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "n"
    assert run.data.params == {"seed": "1"} and run.data.tags["mlci.task"] == "t"
    mlflow.set_tracking_uri(uri)
    assert mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model").predict([[1]]) == [0]
