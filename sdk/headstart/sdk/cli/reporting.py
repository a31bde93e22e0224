"""A command's failures as a person reads them: one line on standard error and the exit code of the table
(headstart.sdk.exit_codes), never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from headstart.sdk import exit_codes


def fail(command: str, line: str, code: int = exit_codes.FAILED) -> typer.Exit:
    """Say ``line`` as ``headstart COMMAND: line`` on standard error; the Exit to raise."""
    typer.echo(f"headstart {command}: {line}", err=True)
    return typer.Exit(code)


@contextmanager
def reported(command: str) -> Iterator[None]:
    """Run a command's body: an SDK error is one line (an invalid manifest one line per problem) and its
    exit code; a bad argument the SDK refuses (ValueError) is a usage error; Ctrl-C is 130."""
    from headstart.sdk.errors import HeadstartError, InvalidJob

    try:
        yield
    except InvalidJob as exc:
        for line in exc.lines:
            typer.echo(f"headstart {command}: {line}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except HeadstartError as exc:
        raise fail(command, str(exc), exc.exit_code) from None
    except ValueError as exc:
        raise fail(command, str(exc), exit_codes.USAGE) from None
    except KeyboardInterrupt:
        raise fail(command, "interrupted", exit_codes.INTERRUPTED) from None
