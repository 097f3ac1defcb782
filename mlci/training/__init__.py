"""Training backends behind one small protocol and one table, and the code that runs and
tracks them. Importing this package imports no backend (scikit-learn, torch) and no MLflow."""

from __future__ import annotations

from mlci.training.backends import BACKENDS, Trainer, get_trainer

__all__ = ["BACKENDS", "Trainer", "get_trainer"]
