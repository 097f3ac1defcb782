"""Training backends behind one small protocol, and the code that runs and tracks them."""

from __future__ import annotations

from mlci.training.base import Trainer, get_trainer

__all__ = ["Trainer", "get_trainer"]
