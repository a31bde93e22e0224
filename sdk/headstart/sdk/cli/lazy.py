"""A command group that imports a command's module only when that command is used (click's "lazy group"):
`headstart --help` lists the commands from a table instead of importing all of them."""

from __future__ import annotations

from difflib import get_close_matches
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperGroup

#: name -> (module of headstart.sdk.cli, function name, one-line help)
Commands = dict[str, tuple[str, str, str]]


def load(name: str, module: str, function: str) -> Any:
    """The click command of ``headstart.sdk.cli.MODULE.FUNCTION``, named ``name``."""
    from .options import Command

    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    single.command(name, cls=Command)(getattr(import_module(f"{__package__}.{module}"), function))
    command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root of the CLI: its subcommands come from ``commands_table``, each loaded on first use."""

    commands_table: Commands = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands_table)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.commands_table:
            self.commands[cmd_name] = load(cmd_name, *self.commands_table[cmd_name][:2])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, entry[2]) for name, entry in self.commands_table.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.commands_table:
            close = get_close_matches(name, list(self.commands_table))
            ctx.fail(f"No such command {name!r}." + (f" Did you mean {', '.join(map(repr, close))}?" if close else ""))
        return super().resolve_command(ctx, args)
