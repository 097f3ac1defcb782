"""The facts of one training as a typed value, and where they live.

``mlci train`` writes them; ``mlci evaluate`` finds the MLflow run in them; the PR check reads
them for the report. Their path is ``train.facts_path`` when params.yaml sets it, else the JSON
output the training stage declares in ``dvc.yaml`` (an output that is neither a metric nor a
plot), else ``reports/train.json``. Their ``environment`` is the training's :func:`runtime`;
the report compares it with the base's (:func:`base_runtime`). Pure apart from reading those
files and ``/etc/os-release``; no heavy imports.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from mlci import git
from mlci.errors import ConfigError, MlciError
from mlci.settings.config import Settings
from mlci.training.gpu import GpuFacts
from mlci.training.settings import TrainParams

DEFAULT_PATH = TrainParams.facts_path
# The libraries whose versions a training's runtime records (those installed).
RUNTIME_PACKAGES = ("numpy", "pandas", "scikit-learn", "torch", "mlflow", "dvc", "mlci")
IMAGE_ENV = "MLCI_IMAGE"  # the runner image's name and tag: docker/Dockerfile sets it
IMAGE_DIGEST_ENV = "MLCI_IMAGE_DIGEST"  # the digest a job pinned its container to: the job sets it
BASE_RUNTIME = "base_environment"  # the report's facts: the base's recorded runtime


@dataclass(frozen=True)
class TrainingFacts:
    backend: str | None = None
    task: str | None = None
    estimator: str | None = None
    device: str | None = None
    duration_s: float | None = None
    world_size: int = 1
    epochs: int | None = None
    rows_train: int | None = None
    rows_test: int | None = None
    seed: int | None = None
    data: Mapping[str, str] = field(default_factory=dict)  # path -> md5
    gpu: GpuFacts = field(default_factory=GpuFacts)
    git_sha: str | None = None
    branch: str | None = None
    pr: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    mlflow_tracking_uri: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainingFacts:
        """Lenient: a value of the wrong type is dropped; unknown keys are kept in ``extra``."""
        known = {f.name: f for f in fields(cls) if f.name not in ("gpu", "extra")}
        values: dict[str, Any] = {}
        for name, f in known.items():
            value = raw.get(name)
            if value is None:
                continue
            kind = str(f.type)
            if name in ("data", "environment"):
                if isinstance(value, Mapping):
                    values[name] = {str(k): str(v) for k, v in value.items()}
            elif kind.startswith("int"):
                if isinstance(value, int) and not isinstance(value, bool):
                    values[name] = value
            elif kind.startswith("float"):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values[name] = float(value)
            else:
                values[name] = str(value)
        extra = {k: v for k, v in raw.items() if k not in known and k != "gpu"}
        return cls(**values, gpu=GpuFacts.from_dict(raw.get("gpu")), extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the facts file (and what ``mlci.report`` reads)."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name in ("gpu", "extra"):
                continue
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
        out["gpu"] = self.gpu.to_dict()
        return out

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
        path.write_text(text, encoding="utf-8")


def facts_path(root: Path, params: TrainParams | None) -> str:
    """Where the facts of a training are (relative to ``root``); see the module's docstring."""
    if params is not None and params.facts_path_set:
        return params.facts_path
    declared = declared_path(root, params.model_path if params is not None else None)
    if declared is not None:
        return declared
    return params.facts_path if params is not None else DEFAULT_PATH


def declared_path(root: Path, model_path: str | None) -> str | None:
    """The training stage's one JSON output that is neither a metric nor a plot."""
    from mlci.project import pipeline

    try:
        project = pipeline.read(root)
    except MlciError:
        return None  # a broken dvc.yaml is reported by the stage that needs it
    stage = project.producer(model_path) if model_path else None
    if stage is None:
        named = [s for s in project.stages if s.name == "train" or "mlci train" in s.cmd]
        stage = named[0] if len(named) == 1 else None
    if stage is None:
        return None
    outs = [o.path for o in stage.outs if o.path.endswith(".json") and not (o.metric or o.plot)]
    if DEFAULT_PATH in outs or not outs:
        return DEFAULT_PATH if outs else None
    return outs[0] if len(outs) == 1 else None


def load(root: Path, settings: Settings) -> TrainingFacts | None:
    """The facts of the last training in ``root``; None when there are none (or not JSON)."""
    from mlci.training.base import train_params

    try:
        params: TrainParams | None = train_params(root, settings.params_file)
    except ConfigError:
        params = None  # a project without mlci's `train:` (its own script) may still have facts
    path = root / facts_path(root, params)
    try:
        raw = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError, RecursionError):
        return None
    return TrainingFacts.from_dict(raw) if isinstance(raw, dict) else None


def run_facts(root: Path, settings: Settings) -> dict[str, Any]:
    """Training facts the pipeline wrote (mlci's trainer or helpers), when present."""
    facts = load(root, settings)
    return facts.to_dict() if facts is not None else {}


def runtime(gpu: GpuFacts | None = None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a training ran on, as strings: Python, the OS and C library, the kernel
    (``platform``), the :data:`RUNTIME_PACKAGES` installed, CUDA (torch's build, when torch is
    loaded and has one; the base image's ``CUDA_VERSION``), the GPU and its driver (from
    ``gpu``), and the runner image (:data:`IMAGE_ENV`, :data:`IMAGE_DIGEST_ENV`) when set."""
    env = os.environ if env is None else env
    out = {"python": platform.python_version(), "platform": platform.platform()}
    name = _os_name()
    if name:
        out["os"] = name
    libc, version = platform.libc_ver()
    if libc:
        out["libc"] = f"{libc} {version}".strip()
    for pkg in RUNTIME_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    torch = sys.modules.get("torch")  # never imported here: a training that used it loaded it
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    if cuda:
        out["cuda"] = str(cuda)
    if env.get("CUDA_VERSION"):  # set by NVIDIA's CUDA base images
        out["cuda image"] = env["CUDA_VERSION"]
    if gpu is not None and gpu.available and gpu.gpus:
        out["gpu"] = gpu.name()
        driver = gpu.gpus[0].get("driver")
        if driver and driver != "unknown":
            out["driver"] = str(driver)
    for key, var in (("image", IMAGE_ENV), ("image digest", IMAGE_DIGEST_ENV)):
        if env.get(var):
            out[key] = env[var]
    return out


def _os_name() -> str | None:
    """``PRETTY_NAME`` from ``/etc/os-release`` (Linux), else None."""
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"') or None
    return None


def base_runtime(root: Path, settings: Settings, sha: str | None) -> dict[str, Any]:
    """``{BASE_RUNTIME: runtime}``: the runtime the facts file committed at ``sha`` records
    (git only: mlci's facts file is an uncached output, committed with the metrics); ``{}``
    without a base commit, a committed facts file or a recorded runtime."""
    from mlci.training.base import train_params

    if not sha:
        return {}
    try:
        params: TrainParams | None = train_params(root, settings.params_file)
    except ConfigError:
        params = None
    try:
        found = git.show_in(root, sha, facts_path(root, params))
        raw = json.loads(found) if found is not None else None
    except (MlciError, ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    environment = TrainingFacts.from_dict(raw).environment
    return {BASE_RUNTIME: dict(environment)} if environment else {}
