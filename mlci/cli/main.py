"""The ``mlci`` entry point: the group, the table of its commands, and the one exit funnel.

Each other module of this package holds a few commands. The group imports a command's module
only when that command runs: ``mlci --help`` lists them from ``COMMANDS`` and imports none of
them (nor dvc, mlflow, torch, ...). Nothing imports this package but the console script and
``python -m mlci``.
"""

from __future__ import annotations

import gc
import os
import sys

import click

from mlci import __version__, console, signals
from mlci.cli.lazy import Lazy, LazyGroup
from mlci.errors import (
    EXIT_INTERRUPTED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    Interrupted,
    MlciError,
    save_for_parent,
)

# Every command: where it lives and the first sentence of its docstring (tests/test_startup.py
# fails when one is missing here or its text differs from the command's own).
COMMANDS = {
    # the PR check
    "run": Lazy("mlci.cli.check:run", "Run the whole PR check."),
    "compare": Lazy(
        "mlci.cli.check:compare",
        "Compare metrics and params with the base revision; exit 4 when a gate fails.",
    ),
    "report": Lazy(
        "mlci.cli.check:report_cmd",
        "Render the PR report from the current work tree and print it (posts nothing).",
    ),
    "publish": Lazy(
        "mlci.cli.check:publish_cmd",
        "Post a rendered report: sticky PR comment, job summary, outputs.",
    ),
    # one stage alone
    "pull": Lazy("mlci.cli.stages:pull", "Pull the pipeline's data from the DVC remote."),
    "validate": Lazy(
        "mlci.cli.stages:validate", "Validate data files against their pandera schemas."
    ),
    "train": Lazy(
        "mlci.cli.stages:train", "Train the model configured under `train:` in params.yaml."
    ),
    "evaluate": Lazy(
        "mlci.cli.stages:evaluate", "Evaluate the trained model; write metrics and plots for DVC."
    ),
    # after the merge and in production
    "promote": Lazy(
        "mlci.cli.registry:promote",
        "Register this commit's model and make it the `champion` (after a merge).",
    ),
    "rollback": Lazy(
        "mlci.cli.registry:rollback", "Move the `champion` alias back and record who and why."
    ),
    "lineage": Lazy(
        "mlci.cli.registry:lineage",
        "Show where the champion came from: commit, PR, data, training run.",
    ),
    "monitor": Lazy(
        "mlci.cli.registry:monitor",
        "Check the champion on a fresh data snapshot: drift, accuracy, latency.",
    ),
    # the release
    "release": Lazy(
        "mlci.cli.release:release",
        "Make the `challenger` the `champion` once it passed its probation and was approved.",
    ),
    "history": Lazy(
        "mlci.cli.release:history",
        "Every move of every alias of the model: when, from -> to, commit, PR, who, approved "
        "by whom, why, and the workflow run.",
    ),
    "card": Lazy(
        "mlci.cli.release:card",
        "Print a model version's card: what it is, where it came from, its metrics against "
        "the champion, slices, what drives its predictions, size, approvals, intended use and "
        "limitations.",
    ),
    # setting up and looking around
    "doctor": Lazy(
        "mlci.cli.setup:doctor",
        "Print what mlci sees: versions, git, DVC remote, MLflow, GPU, GitHub context.",
    ),
    "demo": Lazy(
        "mlci.cli.setup:demo",
        "A full PR check on the bundled example, on real git, DVC and MLflow.",
    ),
    "init": Lazy(
        "mlci.cli.setup:init_cmd",
        "Adopt mlci here: `mlci:` settings, data schemas and the three workflows.",
    ),
}

_debug = {"on": os.environ.get("MLCI_DEBUG") == "1"}


def debugging() -> bool:
    """Whether tracebacks are shown (``--debug`` or ``MLCI_DEBUG=1``)."""
    return _debug["on"]


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlci")
@click.option("--debug", is_flag=True, help="Show tracebacks (or set MLCI_DEBUG=1).")
def cli(debug: bool) -> None:
    """Every pull request proves the model got better, not worse.

    A PR check runs: pull -> validate -> reproduce -> compare -> report -> publish.
    After a merge, `mlci promote` moves the MLflow alias `champion`.
    """
    if debug:
        _debug["on"] = True


def main(argv: list[str] | None = None) -> None:
    """The one exit funnel: errors become one line and their documented exit code.

    SIGINT/SIGTERM stop the running stage and exit 130/143, whatever error they caused.
    """
    try:
        with signals.handled():
            _main(argv)
    finally:
        # what the command made is freed with the process: the interpreter's last collection
        # need not walk it (DVC's objects alone: ~60 ms of a no-op check)
        gc.freeze()
    sys.exit(0)


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="mlci", standalone_mode=False)
        signals.check()
    except MlciError as exc:
        if debugging():
            import traceback

            traceback.print_exc()
        if signals.received() is not None and not isinstance(exc, Interrupted):
            exc = signals.interrupted()
        save_for_parent(exc)
        console.error(exc.one_line(), title=exc.title)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        console.error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if debugging():
            import traceback

            traceback.print_exc()
        if signals.received() is not None:
            stop = signals.interrupted()
            save_for_parent(stop)
            console.error(stop.one_line(), title=stop.title)
            sys.exit(stop.exit_code)
        console.error(
            f"unexpected {type(exc).__name__}: {exc}; rerun with --debug for the "
            "traceback and report it",
            title="mlci bug",
        )
        sys.exit(EXIT_UNEXPECTED)
