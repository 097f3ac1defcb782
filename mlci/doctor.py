"""``mlci doctor``: what mlci sees, one fact per line. Never prints a secret."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from mlci import __version__, ci, git
from mlci.errors import MlciError
from mlci.project import repository


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(root: Path) -> list[tuple[str, str]]:
    try:
        top = git.toplevel(root)
    except MlciError as exc:
        return [("git", exc.message)]
    project = git.project_root(root)
    found = [n for n in ("dvc.yaml", ".dvc") if (project / n).exists()]
    where = f"{project} ({' and '.join(found)})" if found else f"{project} (no dvc.yaml or .dvc/)"
    return [
        ("git root", str(top)),
        ("project root", where),
        ("git prefix", git.prefix(project) or "(top level)"),
        ("git branch", git.branch(top) or "(detached)"),
        ("git commit", git.head_sha(top)[:12] if git.rev_sha(top, "HEAD") else "(none yet)"),
        ("git shallow", str(git.is_shallow(top)).lower()),
        ("git dirty", str(git.is_dirty(top)).lower()),
    ]


def _dvc(root: Path) -> list[tuple[str, str]]:
    from mlci.project import remote

    rows = [("dvc.yaml", "found" if (root / "dvc.yaml").exists() else "missing")]
    try:
        repo = repository.open_repo(root)
    except MlciError as exc:
        return [*rows, ("dvc", exc.message)]
    try:
        name, url = remote.remote_info(repo, None)
        rows.append(("dvc remote", f"{name} -> {url}"))
    except MlciError as exc:
        rows.append(("dvc remote", exc.one_line()))
    finally:
        repo.close()
    return rows


def _gpu() -> list[tuple[str, str]]:
    from mlci.training.gpu import probe

    info = probe()
    nvml = (
        ", ".join(
            f"{g['name']} ({g['memory_total_mb']:.0f} MiB, driver {g['driver']})"
            for g in info["gpus"]
        )
        if info.get("available")
        else info["reason"]
    )
    rows = [("NVML", nvml)]
    try:
        import torch

        cuda = (
            f"available: {torch.cuda.device_count()} device(s), CUDA {torch.version.cuda}"
            if torch.cuda.is_available()
            else "not available (training runs on CPU)"
        )
    except ImportError:
        cuda = "torch not installed (pip install 'mlci[torch]')"
    rows.append(("CUDA", cuda))
    return rows


def diagnose(cwd: Path) -> list[tuple[str, str]]:
    """Facts about the project at or above ``cwd`` (``git.project_root``), else ``cwd``."""
    from mlci.settings import config

    try:
        root = git.project_root(cwd)
    except MlciError:
        root = cwd

    rows = [("mlci", __version__), ("python", platform.python_version())]
    rows += [
        (pkg, _version(pkg))
        for pkg in ("dvc", "mlflow", "pandera", "scikit-learn", "torch", "nvidia-ml-py")
    ]
    rows += _git(root)
    rows += _dvc(root)
    try:
        settings = config.load(root)
        rows += [
            ("settings", f"{len(settings.gates)} gates, {len(settings.validate)} validated files"),
            ("MLflow URI", settings.tracking_uri),
            ("model name", settings.model_name),
        ]
    except MlciError as exc:
        rows.append(("settings", exc.one_line()))
    rows += _gpu()
    ctx = ci.detect()
    rows += [
        ("GitHub Actions", "yes" if ctx.on_github else "no"),
        ("event", ctx.event_name or "-"),
        ("repository", ctx.repository or "-"),
        ("pull request", str(ctx.pr_number or "-")),
        ("token", "present (masked)" if ctx.has_token else "absent"),
        ("fork PR", str(ctx.from_fork).lower()),
    ]
    return rows
