"""PyTorch backend: a tabular MLP trained full-batch on the device (CUDA when present).

Small tabular data fits on the device, so there is no DataLoader: every epoch is a handful of
kernel launches. Early stopping watches a held-out tenth of the training rows.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlci.training.base import TrainParams


class TabularMLP(nn.Module):
    """Standardises its inputs (statistics kept as buffers), then an MLP to class logits."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n_features: int, n_classes: int, hidden: list[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)  # type: ignore[no-any-return]


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


class TorchTrainer:
    name = "torch"

    def device(self) -> str:
        return str(pick_device())

    def fit(self, x: Any, y: Any, params: TrainParams) -> Any:
        cfg = dict(params.torch)
        rank, world = distributed()
        device = pick_device()
        torch.manual_seed(params.seed)
        xs = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
        classes = np.unique(np.asarray(y))
        ys = torch.as_tensor(np.searchsorted(classes, np.asarray(y)), device=device)
        gen = torch.Generator().manual_seed(params.seed)
        order = torch.randperm(len(xs), generator=gen).to(device)
        n_val = max(1, len(xs) // 10)
        val_idx, fit_idx = order[:n_val], order[n_val:]
        shard = fit_idx[rank::world]  # each rank its own rows; DDP averages the gradients
        model = TabularMLP(xs.shape[1], len(classes), [int(h) for h in cfg.get("hidden", [32])])
        model.mean.copy_(xs[fit_idx].mean(0))
        model.std.copy_(xs[fit_idx].std(0).clamp_min(1e-6))
        model.to(device)
        net: nn.Module = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        opt = torch.optim.AdamW(
            model.parameters(),
            lr=float(cfg.get("lr", 0.01)),
            weight_decay=float(cfg.get("weight_decay", 0.0)),
        )
        loss_fn = nn.CrossEntropyLoss()
        best, best_state, waited = float("inf"), copy.deepcopy(model.state_dict()), 0
        patience = int(cfg.get("patience", 20))
        checkpoint = cfg.get("checkpoint")
        amp = device.type == "cuda"
        self.epochs_run = 0
        for epoch in range(int(cfg.get("epochs", 100))):
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
                if checkpoint and rank == 0:
                    save_checkpoint(str(checkpoint), epoch, best_state, opt, best)
            else:
                waited += 1
                if waited >= patience:
                    break
        model.load_state_dict(best_state)
        model.classes_ = classes  # type: ignore[assignment]
        return model.cpu().eval()

    def predict_proba(self, model: Any, x: Any) -> Any:
        with torch.no_grad():
            logits = model(torch.as_tensor(np.asarray(x, dtype=np.float32)))
            return torch.softmax(logits.float(), dim=1).numpy()

    def log_model(self, model: Any, name: str) -> None:
        import mlflow.pytorch

        mlflow.pytorch.log_model(
            model,
            name=name,
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
