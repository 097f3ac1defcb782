"""A click group whose commands are imported when one runs, not when the group is built.

The group is given a table: each command's name, where it lives (``module:attribute``) and its
short help. ``mlci --help`` lists the commands from that table, so it imports no command
module, nor the libraries those import; ``mlci run`` imports ``mlci.cli.check`` alone.
tests/test_startup.py checks the table against the commands themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from gettext import gettext as _
from typing import Any, NamedTuple

import click


class Lazy(NamedTuple):
    """A command not yet imported: ``target`` is ``module:attribute``; ``short_help`` is the
    first sentence of its docstring, as ``--help`` lists it."""

    target: str
    short_help: str


def load(target: str) -> click.Command:
    """Import the command ``module:attribute`` names."""
    import importlib

    module, _sep, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is a {type(command).__name__}, not a click command")
    return command


class LazyCommands(MutableMapping[str, click.Command]):
    """``Group.commands`` that imports a command the first time it is looked up.

    click reads this mapping to find a command, to list them and to suggest one for a typo
    ("Did you mean 'run'?"); the names come from the table, so none of that imports.
    """

    def __init__(self, table: Mapping[str, Lazy]) -> None:
        self.table = dict(table)
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            if name not in self.table:
                raise KeyError(name)
            self.loaded[name] = load(self.table[name].target)
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self.loaded and name not in self.table:
            raise KeyError(name)
        self.loaded.pop(name, None)
        self.table.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self.table
        yield from (name for name in self.loaded if name not in self.table)

    def __len__(self) -> int:
        return len(self.table.keys() | self.loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.table or name in self.loaded


class LazyGroup(click.Group):
    """A ``click.Group`` built from a table of ``Lazy`` commands (``lazy=``)."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = LazyCommands(lazy)
        self.commands = self.lazy_commands

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the short help of a command not yet imported from the table
        (shortened to the terminal's width exactly as click shortens a docstring)."""
        shown = []
        for name in self.list_commands(ctx):
            command = self.lazy_commands.loaded.get(name)
            if command is None:
                command = click.Command(name, help=self.lazy_commands.table[name].short_help)
            if not command.hidden:
                shown.append((name, command))
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _cmd in shown)
        rows = [(name, command.get_short_help_str(limit)) for name, command in shown]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)
