"""`mlci init` writes workflows that install the project's own dependencies.

The project's ``requirements*.txt``, ``pyproject.toml`` and ``environment.yml`` are found and
summarised one line per file; the PR and promote workflows install them before mlci's step
(the publish workflow runs no stage, so not there); the generated files stay zizmor-clean and
valid against GitHub's workflow schema; and the install step installs nothing from a fork's code
where secrets are present. (Installed for real, in a fresh venv and under act:
tests/test_init_act.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

SHA = "0123456789abcdef0123456789abcdef01234567"
ACTION = f"acme/mlci@{SHA}"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: it is a test dependency (pip install -e '.[test]')")
    return found


def _steps(text: str) -> list[dict[str, Any]]:
    (job,) = yaml.safe_load(text)["jobs"].values()
    return list(job["steps"])


def _install_script(text: str) -> str:
    from mlci.adopt.deps import STEP

    (step,) = [s for s in _steps(text) if s.get("name") == STEP]
    return str(step["run"])


# ---- which files, and what the summary says ----------------------------------------------------


def _declare_everything(top: Path) -> Path:
    """A repository whose DVC project lives in ``ml/``: files at both levels."""
    root = top / "ml"
    root.mkdir(parents=True)
    (root / "requirements.txt").write_text("lightgbm\n")
    (root / "requirements-dev.txt").write_text("pytest\n")
    (root / "requirements_docs.txt").write_text("mkdocs\n")
    (root / "requirements-gpu.txt").write_text("cupy\n")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "churn"\nversion = "0.1"\n'
        '[project.optional-dependencies]\ntrain = ["xgboost"]\ndev = ["ruff"]\ntest = ["pytest"]\n'
    )
    (top / "environment.yml").write_text(
        "name: churn\nchannels: [conda-forge]\ndependencies:\n"
        "  - python=3.11\n  - conda-forge::numpy>=1.26\n  - pandas\n  - pip\n"
        "  - pip:\n    - --extra-index-url https://pypi.example/simple\n"
        '    - shap >= 0.45; python_version < "3.14"\n'
    )
    return root


def test_dependency_files_are_found_and_summarised_one_line_each(tmp_path: Path) -> None:
    from mlci.adopt import deps

    root = _declare_everything(tmp_path)
    sources = deps.find(root, tmp_path)
    assert {s.path: s.args for s in sources} == {
        "environment.yml": (
            "--extra-index-url",
            "https://pypi.example/simple",
            'shap >= 0.45; python_version < "3.14"',
        ),
        "ml/requirements-dev.txt": (),
        "ml/requirements-gpu.txt": ("-r", "requirements-gpu.txt"),
        "ml/requirements.txt": ("-r", "requirements.txt"),
        "ml/requirements_docs.txt": (),
        "ml/pyproject.toml": ("-e", ".[train]"),
    }
    lines = deps.summary(sources)
    assert len(lines) == len(sources)
    text = "\n".join(lines)
    assert "ml/requirements.txt: installed (pip install -r requirements.txt)" in text
    assert "ml/requirements-dev.txt: not installed (development only" in text
    assert "ml/pyproject.toml: the project, installed (pip install -e '.[train]')" in text
    assert "not its extras dev, test" in text
    assert "not its conda packages, as the runner has no conda: numpy pandas" in text


def test_a_project_without_dependency_files_says_so_and_gets_no_step(tmp_path: Path) -> None:
    from mlci.adopt import deps
    from mlci.adopt.init import TEMPLATES, _adapt, with_install_step

    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    sources = deps.find(tmp_path, tmp_path)
    assert deps.summary(sources) == (
        "pyproject.toml: tool settings only (no [project] or [build-system]): nothing to install",
    )
    text = _adapt((TEMPLATES / "mlci-pr.yml").read_text(), tmp_path, tmp_path, ACTION, sources)
    assert with_install_step(text, sources) == text
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (source,) = deps.find(tmp_path, tmp_path)
    assert source.args == ("-e", ".")


def test_generated_workflows_install_before_mlci_and_stay_clean(tmp_path: Path) -> None:
    from mlci.adopt import deps
    from mlci.adopt.init import STAGE_WORKFLOWS, TEMPLATES, WORKFLOWS, _adapt, with_install_step

    root = _declare_everything(tmp_path)
    sources = deps.find(root, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for name in WORKFLOWS:
        text = _adapt((TEMPLATES / name).read_text(), root, tmp_path, ACTION, sources)
        if name in STAGE_WORKFLOWS:
            text = with_install_step(text, sources)
        (out / name).write_text(text)
        names = [s.get("name") for s in _steps(text)]
        if name not in STAGE_WORKFLOWS:
            assert deps.STEP not in names  # publish runs no stage, and no project code
            continue
        assert (
            names.index(deps.STEP)
            == names.index("mlci run + promote" if "promote" in name else "mlci") - 1
        )
        script = _install_script(text)
        assert "${{" not in script
        assert "python3 -P -m pip install --disable-pip-version-check" in script
        assert (
            "(cd ml && python3 -P -m pip install --disable-pip-version-check "
            "-r requirements.txt -r requirements-gpu.txt -e '.[train]')"
        ) in script
        assert "requirements-dev.txt" not in script and "docs" not in script
    pr = (out / "mlci-pr.yml").read_text()
    assert (
        "cache-dependency-path: |\n            environment.yml\n            ml/requirements" in pr
    )

    files = sorted(map(str, out.glob("*.yml")))
    zizmor = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", "--min-severity", "low", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    schema = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


@pytest.mark.parametrize(
    ("event", "env", "installs"),
    [
        ("pull_request", {}, True),
        ("push", {}, True),
        ("pull_request_target", {"HEAD_REPOSITORY": "octo/demo"}, True),
        ("pull_request_target", {"HEAD_REPOSITORY": "mallory/demo"}, False),
        ("pull_request_target", {"HEAD_REPOSITORY": ""}, False),  # a deleted fork
        ("issue_comment", {}, False),  # the event does not say whose code it is
        ("workflow_run", {}, False),
        ("issue_comment", {"MLCI_ALLOW_UNTRUSTED": "true"}, True),  # the workflow allows it
    ],
)
def test_the_install_step_installs_nothing_from_a_fork_where_secrets_are_present(
    tmp_path: Path, event: str, env: dict[str, str], installs: bool
) -> None:
    from mlci.adopt import deps
    from mlci.adopt.init import TEMPLATES, _adapt, with_install_step

    (tmp_path / "requirements.txt").write_text("lightgbm\n")
    sources = deps.find(tmp_path, tmp_path)
    text = _adapt((TEMPLATES / "mlci-pr.yml").read_text(), tmp_path, tmp_path, ACTION, sources)
    script = _install_script(with_install_step(text, sources))
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls.txt"
    (fake / "python3").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (fake / "python3").chmod(0o755)
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={
            "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_REPOSITORY": "octo/demo",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if installs:
        assert calls.read_text().split() == [
            *("-P", "-m", "pip", "install", "--disable-pip-version-check"),
            *("-r", "requirements.txt"),
        ]
    else:
        assert not calls.exists()
        assert "::warning title=mlci::not installing the project's dependencies" in proc.stdout
