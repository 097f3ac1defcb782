"""Shared fixtures: a loopback GitHub server, a template git + DVC repo, MLflow stores."""

from __future__ import annotations

from github_server import github  # noqa: F401  (fixture)
