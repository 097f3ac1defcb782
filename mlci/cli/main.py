"""The ``mlci`` entry point: the group with every command on it, and the one exit funnel.

Each module of this package holds one group of commands (``COMMANDS``); nothing imports this
package but the console script and ``python -m mlci``.
"""

from __future__ import annotations

import sys

import click

from mlci import console, signals
from mlci.cli import check, registry, release, setup, stages
from mlci.cli.common import cli, debugging
from mlci.errors import (
    EXIT_INTERRUPTED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    Interrupted,
    MlciError,
    save_for_parent,
)

for group in (check, stages, registry, release, setup):
    for command in group.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """The one exit funnel: errors become one line and their documented exit code.

    SIGINT/SIGTERM stop the running stage and exit 130/143, whatever error they caused.
    """
    with signals.handled():
        _main(argv)
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
