"""`mlci --help` starts fast: it imports no command module and none of the heavy libraries,
and lists the commands from the table in `mlci.cli.main`, which must match the commands."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import mlci.cli
from mlci.cli.lazy import LazyGroup, load
from mlci.cli.main import COMMANDS, cli

HEAVY = (
    "dvc",
    "mlflow",
    "torch",
    "pandera",
    "sklearn",
    "pandas",
    "numpy",
    "requests",
    "yaml",
)
COMMAND_MODULES = tuple(
    f"mlci.cli.{m.name}"
    for m in pkgutil.iter_modules(mlci.cli.__path__)
    if m.name not in ("main", "lazy")
)
CONSOLE_SCRIPT = Path(sys.executable).parent / "mlci"


# Runs mlci as `python -m mlci` or its console script does, and says at exit what was imported
# (sys.modules: importtime does not see a module importlib.import_module loads).
PROBE = """
import atexit, runpy, sys
atexit.register(lambda: print("\\nMODULES=" + " ".join(sys.modules), file=sys.stderr))
how, sys.argv = sys.argv[1], sys.argv[2:]
if how == "-m":
    runpy.run_module("mlci", run_name="__main__", alter_sys=True)
else:
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _mlci(*args: str, script: bool = False) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run mlci (``python -m mlci`` or the console script); also the modules it imported."""
    how = [str(CONSOLE_SCRIPT), str(CONSOLE_SCRIPT)] if script else ["-m", "mlci"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *how, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
        timeout=120,
    )
    stderr, _, modules = proc.stderr.rpartition("\nMODULES=")
    imported = set(modules.split())
    assert "mlci.cli.main" in imported, proc.stderr[-2000:]
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, stderr), imported


def _heavy(imported: set[str]) -> list[str]:
    return sorted(m for m in imported if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize("script", [False, True], ids=["python -m mlci", "console script"])
def test_help_imports_no_command_and_no_heavy_library(script: bool) -> None:
    if script and not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT} (mlci is not installed)")
    proc, imported = _mlci("--help", script=script)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _heavy(imported) == []
    assert sorted(imported & set(COMMAND_MODULES)) == []
    for name, entry in COMMANDS.items():
        assert f"\n  {name:<8}  {entry.short_help[:20]}" in proc.stdout, name


def test_a_command_imports_its_own_module_only() -> None:
    proc, imported = _mlci("validate", "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage: mlci validate [OPTIONS]" in proc.stdout
    assert "--params-file FILE" in proc.stdout
    assert "mlci.cli.stages" in imported
    assert sorted(imported & {"mlci.cli.check", "mlci.cli.registry", "mlci.cli.release"}) == []
    assert _heavy(imported) == []


def test_a_mistyped_command_is_a_usage_error_with_a_suggestion() -> None:
    proc, imported = _mlci("rn")
    assert proc.returncode == 2
    assert "Error: No such command 'rn'. Did you mean 'run'?" in proc.stderr
    assert sorted(imported & set(COMMAND_MODULES)) == []
    proc, _ = _mlci("nosuch")
    assert proc.returncode == 2
    assert "Error: No such command 'nosuch'.\n" in proc.stderr


def test_version() -> None:
    from mlci import __version__

    proc, imported = _mlci("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"mlci, version {__version__}\n"
    assert _heavy(imported) == []


# ---- the table of commands ----------------------------------------------------------------


def _defined_commands() -> dict[str, click.Command]:
    """Every click command defined in the modules of mlci.cli, by its ``module:attribute``."""
    found = {}
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        for attribute, value in vars(module).items():
            if isinstance(value, click.Command):
                found[f"{module_name}:{attribute}"] = value
    return found


def test_the_table_names_every_command_where_it_lives() -> None:
    defined = _defined_commands()
    targets = {entry.target: name for name, entry in COMMANDS.items()}
    missing = sorted(set(defined) - set(targets))
    assert not missing, f"add these to COMMANDS in mlci/cli/main.py: {missing}"
    stale = sorted(set(targets) - set(defined))
    assert not stale, f"no such commands; remove them from COMMANDS: {stale}"
    for target, name in targets.items():
        assert defined[target].name == name, target


def test_each_short_help_is_the_first_sentence_of_the_commands_docstring() -> None:
    for name, entry in COMMANDS.items():
        command = load(entry.target)
        assert command.short_help is None and not command.hidden, name
        own = command.get_short_help_str(limit=10**6)
        assert entry.short_help == own, f"COMMANDS[{name!r}] in mlci/cli/main.py must be {own!r}"
        for limit in range(0, len(own) + 5):  # shortened alike at every width
            stub = click.Command(name, help=entry.short_help)
            assert stub.get_short_help_str(limit) == command.get_short_help_str(limit), name


@pytest.mark.parametrize("width", [40, 80, 200])
def test_the_listing_is_the_one_click_makes_from_the_commands(width: int) -> None:
    lazy = LazyGroup(name="mlci", lazy=COMMANDS, params=cli.params, help=cli.help)
    eager = click.Group(
        name="mlci",
        commands={name: load(entry.target) for name, entry in COMMANDS.items()},
        params=cli.params,
        help=cli.help,
    )

    def shown(group: click.Group) -> str:
        return group.get_help(click.Context(group, info_name="mlci", terminal_width=width))

    assert shown(lazy) == shown(eager)
    assert lazy.lazy_commands.loaded == {}  # listing imported nothing


def test_a_command_is_loaded_once_and_unknown_names_are_not_commands() -> None:
    group = LazyGroup(name="mlci", lazy=COMMANDS)
    ctx = click.Context(group)
    assert group.list_commands(ctx) == sorted(COMMANDS)
    assert "run" in group.commands and "nosuch" not in group.commands
    assert group.lazy_commands.loaded == {}
    first = group.get_command(ctx, "run")
    assert first is not None and first is group.get_command(ctx, "run")
    assert list(group.lazy_commands.loaded) == ["run"]
    assert group.get_command(ctx, "nosuch") is None
