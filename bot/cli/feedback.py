"""``python -m bot feedback``: export the thumbs-down answers as an eval question set; migrate SQLite → PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr, ValidationError

from bot.cli.common import fail
from bot.feedback import FILENAME, STORE_ERRORS, FeedbackStore, export_yaml, migrate
from bot.settings import Settings, get_settings, server_address

feedback_app = typer.Typer(help="Ratings people gave the answers.", no_args_is_help=True)


def _open(settings: Settings) -> FeedbackStore:
    """The store ``settings`` name (``BOT_DATABASE_URL``, else SQLite in ``BOT_DATA_DIR``), or a clean exit."""
    where = server_address(settings.database_url) if settings.database_url else settings.data_dir / FILENAME
    if settings.database_url is None and not (settings.data_dir / FILENAME).exists():
        raise fail(f"No feedback has been stored yet (looked for {settings.data_dir / FILENAME}).")
    try:
        return FeedbackStore.for_settings(settings)
    except STORE_ERRORS as error:
        raise fail(f"The feedback store at {where} cannot be opened ({error.__class__.__name__}).") from None


@feedback_app.command("export")
def feedback_export(
    output: Annotated[
        str, typer.Option("--output", "-o", help='File to write, or "-" for standard output.')
    ] = "eval/reports/feedback.yaml",
) -> None:
    """Write the thumbs-down answers as an eval question set (the format of eval/sets/*.yaml)."""
    store = _open(get_settings())
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


@feedback_app.command("migrate")
def feedback_migrate(
    to: Annotated[str, typer.Option("--to", help="The PostgreSQL database, e.g. postgresql://coach:…@host/coach.")],
) -> None:
    """Copy the ratings in BOT_DATA_DIR's SQLite file into PostgreSQL (again: only those not copied yet)."""
    settings = get_settings()
    try:
        url = Settings(database_url=SecretStr(to)).database_url
    except ValidationError as error:
        raise fail(f"--to: {error.errors()[0]['msg']}") from None
    assert url is not None
    source = _open(settings.model_copy(update={"database_url": None}))
    try:
        target = FeedbackStore.connect(url, retention_days=settings.feedback_retention_days)
    except STORE_ERRORS as error:
        source.close()
        raise fail(f"The database at {server_address(url)} cannot be reached ({error.__class__.__name__}).") from None
    try:
        copied = migrate(source, target)
    except STORE_ERRORS as error:
        failed = f"Copying into {server_address(url)} failed ({error.__class__.__name__}); nothing was copied."
        raise fail(failed) from None
    finally:
        source.close()
        target.close()
    typer.echo(f"{copied.copied} rating(s) copied from {settings.data_dir / FILENAME} into {server_address(url)}"
               + (f" ({copied.already_there} already there)." if copied.already_there else "."))  # fmt: skip
