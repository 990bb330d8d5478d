"""What every command of the command line shares: one way to stop with a clear error."""

from __future__ import annotations

import typer


def fail(message: str) -> typer.Exit:
    """Print ``message`` in red on standard error; raise the result to exit with code 2 (never a traceback)."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)
