"""PyTorch backend: a tabular network trained full-batch on the device (CUDA when present).

Small tabular data fits on the device, so there is no DataLoader: every epoch is a handful of
kernel launches. Early stopping watches a held-out tenth of the training rows.

The network is the built-in :class:`TabularMLP` or the user's ``nn.Module`` named by
``train.torch.module`` (``pkg.mod:Class`` or ``pkg.mod.Class``), built as
``Class(n_features=..., n_outputs=..., **train.torch.module_args)``. Either way it is wrapped
in :class:`TabularModel`, which standardises the inputs with statistics kept as buffers, so the
saved model predicts from raw features. Classification trains on cross-entropy over one logit
per class; regression on the squared error of one output, against the standardised target
unless ``standardize_target: false`` (the model still predicts in the target's units).

``train.torch.deterministic: true`` calls ``torch.use_deterministic_algorithms(True)``: an op
without a deterministic implementation then fails (as a ConfigError) instead of varying between
runs. On CUDA it also sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` when unset (cuBLAS reads it when
first used, so this happens before any CUDA work) and turns ``cudnn.benchmark`` off. These are
process-wide settings and stay on after training.
"""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlci.errors import ConfigError
from mlci.training.backends import ModelFiles
from mlci.training.settings import TorchParams, TrainParams, torch_params

MODULE_FIX = "name an nn.Module class as package.module:Class, importable from the repository root"


class TabularMLP(nn.Module):
    """The built-in network: linear layers with ReLUs between them."""

    def __init__(self, n_features: int, n_outputs: int, hidden: Sequence[int] = (32,)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


class TabularModel(nn.Module):
    """What is saved: input standardisation around a network. Classification returns its
    logits; regression its single output in the target's units."""

    mean: torch.Tensor
    std: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(self, net: nn.Module, n_features: int, task: str) -> None:
        super().__init__()
        self.net = net
        self.task = task
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net((x - self.mean) / self.std)
        if self.task == "regression":
            out = out.float().reshape(len(x)) * self.target_std + self.target_mean
        return out  # type: ignore[no-any-return]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def load_module_class(spec: str) -> type[nn.Module]:
    """The class named by ``pkg.mod:Class`` or ``pkg.mod.Class``."""
    module_name, _, attr = spec.partition(":") if ":" in spec else spec.rpartition(".")
    where = f"train.torch.module '{spec}'"
    if not module_name or not attr:
        raise ConfigError(f"{where} is not an import path", fix=MODULE_FIX)
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"{where} cannot be imported: {_first_line(exc)}", fix=MODULE_FIX
        ) from None
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise ConfigError(f"{where}: {module_name} has no {attr}", fix=MODULE_FIX)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise ConfigError(f"{where} is not a torch.nn.Module subclass", fix=MODULE_FIX)
    return found


def build_network(cfg: TorchParams, n_features: int, n_outputs: int) -> nn.Module:
    """The built-in MLP, or the user's module checked on a batch of two rows."""
    if cfg.module is None:
        return TabularMLP(n_features, n_outputs, cfg.hidden)
    cls = load_module_class(cfg.module)
    try:
        net = cls(n_features=n_features, n_outputs=n_outputs, **cfg.module_args)
    except Exception as exc:
        raise ConfigError(
            f"train.torch.module {cfg.module} cannot be constructed: {_first_line(exc)}",
            fix="its __init__ must take n_features= and n_outputs= keywords and the keys of "
            "train.torch.module_args",
        ) from None
    net.eval()  # no batch-norm statistics or dropout from the probe
    try:
        with torch.no_grad():
            out = net(torch.zeros(2, n_features))
    except Exception as exc:
        if cfg.deterministic and "deterministic" in str(exc):
            raise nondeterministic(exc) from None
        raise ConfigError(
            f"train.torch.module {cfg.module} failed on a batch of 2 rows: {_first_line(exc)}",
            fix="its forward must take a float tensor of shape (rows, n_features)",
        ) from None
    net.train()
    shape = tuple(getattr(out, "shape", ()))
    if shape != (2, n_outputs) and not (n_outputs == 1 and shape == (2,)):
        raise ConfigError(
            f"train.torch.module {cfg.module} returns shape {shape} for 2 rows, "
            f"not (2, {n_outputs})",
            fix="return one column per class (classification) or one column (regression)",
        )
    return net


def make_deterministic() -> None:
    """Deterministic kernels only; on CUDA a fixed cuBLAS workspace and no cuDNN autotuning."""
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)


def nondeterministic(exc: BaseException) -> ConfigError:
    return ConfigError(
        f"train.torch.deterministic: {_first_line(exc)}",
        fix="set train.torch.deterministic: false, or avoid that op in the module",
    )


def distributed() -> tuple[int, int]:
    """(rank, world size); under ``torchrun`` joins the process group (NCCL on GPUs, gloo on
    CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def save_checkpoint(path: str, epoch: int, state: dict[str, Any], opt: Any, best: float) -> None:
    """The best weights so far, with the optimiser, written atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    torch.save(
        {"epoch": epoch, "model": state, "optimizer": opt.state_dict(), "val_loss": best}, tmp
    )
    tmp.replace(target)


def make_loss(model: TabularModel) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy on logits, or squared error in standardised target units."""
    if model.task != "regression":
        return nn.CrossEntropyLoss()
    mse = nn.MSELoss()

    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        scale = model.target_std
        return mse((pred - model.target_mean) / scale, (target - model.target_mean) / scale)  # type: ignore[no-any-return]

    return loss


class TorchTrainer:
    name = "torch"

    def device(self) -> str:
        return str(pick_device())

    def describe(self, params: TrainParams) -> str:
        return str(params.torch.get("module") or "mlci.training.torch.TabularMLP")

    def fit(self, x: Any, y: Any, params: TrainParams) -> Any:
        cfg = torch_params(params.torch)
        if cfg.deterministic:
            make_deterministic()
        rank, world = distributed()
        device = pick_device()
        torch.manual_seed(params.seed)
        xs = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
        classes = None
        if params.task == "regression":
            ys = torch.as_tensor(np.asarray(y, dtype=np.float32), device=device)
            n_outputs = 1
        else:
            classes = np.unique(np.asarray(y))
            ys = torch.as_tensor(np.searchsorted(classes, np.asarray(y)), device=device)
            n_outputs = len(classes)
        gen = torch.Generator().manual_seed(params.seed)
        order = torch.randperm(len(xs), generator=gen).to(device)
        n_val = max(1, len(xs) // 10)
        val_idx, fit_idx = order[:n_val], order[n_val:]
        model = TabularModel(build_network(cfg, xs.shape[1], n_outputs), xs.shape[1], params.task)
        model.mean.copy_(xs[fit_idx].mean(0))
        model.std.copy_(xs[fit_idx].std(0).clamp_min(1e-6))
        if params.task == "regression" and cfg.standardize_target:
            model.target_mean.copy_(ys[fit_idx].mean())
            model.target_std.copy_(ys[fit_idx].std().clamp_min(1e-6))
        model.to(device)
        shard = fit_idx[rank::world]  # each rank its own rows; DDP averages the gradients
        try:
            self._loop(model, cfg, xs, ys, shard, val_idx, rank, world)
        except RuntimeError as exc:
            if cfg.deterministic and "deterministic" in str(exc):
                raise nondeterministic(exc) from None
            raise
        if classes is not None:
            model.classes_ = classes  # type: ignore[assignment]
        return model.cpu().eval()

    def _loop(
        self,
        model: TabularModel,
        cfg: TorchParams,
        xs: torch.Tensor,
        ys: torch.Tensor,
        shard: torch.Tensor,
        val_idx: torch.Tensor,
        rank: int,
        world: int,
    ) -> None:
        """Full-batch epochs with early stopping; leaves the best weights in ``model``."""
        device = xs.device
        net: nn.Module = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = make_loss(model)
        best, best_state, waited = float("inf"), copy.deepcopy(model.state_dict()), 0
        amp = device.type == "cuda"
        self.epochs_run = 0
        for epoch in range(cfg.epochs):
            net.train()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = loss_fn(net(xs[shard]), ys[shard])
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            self.epochs_run = epoch + 1
            model.eval()
            # Parameters are identical on every rank after the step, so every rank scores the
            # same validation rows and takes the same early-stopping decision.
            with torch.no_grad():
                val = float(loss_fn(model(xs[val_idx]).float(), ys[val_idx]))
            if val < best - 1e-6:
                best, best_state, waited = val, copy.deepcopy(model.state_dict()), 0
                if cfg.checkpoint and rank == 0:
                    save_checkpoint(cfg.checkpoint, epoch, best_state, opt, best)
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
        model.load_state_dict(best_state)

    def predict_proba(self, model: Any, x: Any) -> Any:
        with torch.no_grad():
            logits = model(torch.as_tensor(np.asarray(x, dtype=np.float32)))
            return torch.softmax(logits.float(), dim=1).numpy()

    def predict(self, model: Any, x: Any) -> Any:
        """Predictions in the target's units (regression) or class labels (classification)."""
        with torch.no_grad():
            out = model(torch.as_tensor(np.asarray(x, dtype=np.float32))).float()
        if getattr(model, "task", "classification") == "regression":
            return out.numpy()
        return np.asarray(model.classes_)[out.argmax(dim=1).numpy()]

    def export_model(self, model: Any, directory: Path) -> ModelFiles:
        """``data/model.pth`` as ``mlflow.pytorch.save_model`` writes it (its pickle module is
        cloudpickle under another name), and that flavor's entries."""
        import cloudpickle

        pickle_module = "mlflow.pytorch.pickle_module"
        data = directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "pickle_module_info.txt").write_text(pickle_module, encoding="utf-8")
        torch.save(model, data / "model.pth", pickle_module=cloudpickle)
        return ModelFiles(
            flavor="pytorch",
            flavor_conf={
                "model_data": "data",
                "pytorch_version": str(torch.__version__),
                "code": None,
            },
            pyfunc_conf={
                "data": "data",
                "pickle_module_name": pickle_module,
                "model_config": {"device": None},
            },
            pip_requirements=(f"torch=={torch.__version__.split('+')[0]}",),
        )

    def load_model(self, uri: str) -> Any:
        import mlflow.pytorch

        return mlflow.pytorch.load_model(uri)

    def log_model(self, model: Any, name: str) -> None:
        import mlflow.pytorch

        mlflow.pytorch.log_model(
            model,
            name=name,
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
