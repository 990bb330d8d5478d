"""``python -m bot feedback export``: the thumbs-down answers as an eval question set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import fail
from bot.feedback import FILENAME, FeedbackStore, export_yaml
from bot.settings import get_settings

feedback_app = typer.Typer(help="Ratings people gave the answers.", no_args_is_help=True)


@feedback_app.command("export")
def feedback_export(
    output: Annotated[
        str, typer.Option("--output", "-o", help='File to write, or "-" for standard output.')
    ] = "eval/reports/feedback.yaml",
) -> None:
    """Write the thumbs-down answers as an eval question set (the format of eval/sets/*.yaml)."""
    settings = get_settings()
    if not (settings.data_dir / FILENAME).exists():
        raise fail(f"No feedback has been stored yet (looked for {settings.data_dir / FILENAME}).")
    store = FeedbackStore.open(settings.data_dir, retention_days=settings.feedback_retention_days)
    try:
        rows = store.rows(rating=-1)
    finally:
        store.close()
    text = export_yaml(rows)
    if output == "-":
        typer.echo(text, nl=False)
        return
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"{len(rows)} thumbs-down case(s) written to {target}.")
