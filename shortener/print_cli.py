"""`touchlink qr-sheet`: the QR sheet as a PDF file, with the selection the API and page take."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext
from werkzeug.datastructures import MultiDict

from shortener.cli import reading
from shortener.db import utcnow
from shortener.errors import DomainError
from shortener.models import Channel
from shortener.print_selection import Selection, select_links
from shortener.print_sheet import (
    COLUMNS_DEFAULT,
    PAPER_DEFAULT,
    SheetEntry,
    SheetLayout,
    render_sheet,
)
from shortener.runtime import runtime


@click.command("qr-sheet")
@click.option("--links", "link_list", multiple=True, metavar="IDS",
              help="Link ids or slugs, comma-separated; may be given again.")
@click.option("--touchpoint", metavar="KEY", help="Every live link of this touchpoint.")
@click.option("--channel", type=click.Choice([c.value for c in Channel]),
              help="Every live link of the touchpoints of this channel.")
@click.option("--paper", default=PAPER_DEFAULT, show_default=True, help="a4 or letter.")
@click.option("--columns", default=str(COLUMNS_DEFAULT), show_default=True,
              help="Codes across the page, 1 to 6.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The PDF file to write.")
@with_appcontext
def qr_sheet_command(
    link_list: tuple[str, ...],
    touchpoint: str | None,
    channel: str | None,
    paper: str,
    columns: str,
    output: Path,
) -> None:
    """Write a PDF sheet of QR codes, each with its touchpoint, stage and short URL under it."""
    rt = runtime()
    args: MultiDict[str, str] = MultiDict([("links", value) for value in link_list])
    for name, value in (("touchpoint", touchpoint), ("channel", channel), ("paper", paper),
                        ("columns", columns)):
        if value is not None:
            args.add(name, value)
    with reading() as session:
        try:
            selection = Selection.from_args(args)
            layout = SheetLayout.from_args(args)
        except DomainError as exc:
            raise click.UsageError(_as_options(exc.message)) from None
        found = select_links(session, selection, domain=rt.settings.short_host, now=utcnow())
        entries = [SheetEntry.of(link, scheme=rt.settings.scheme) for link in found]
    pdf = render_sheet(entries, layout)
    try:
        output.write_bytes(pdf)
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror or str(exc)) from None
    pages = -(-len(entries) // layout.per_page)
    click.echo(
        f"Wrote {output}: {len(entries)} code{'s' if len(entries) != 1 else ''} "
        f"on {pages} page{'s' if pages != 1 else ''} ({layout.paper}, {layout.columns} across)."
    )


def _as_options(message: str) -> str:
    """A message about query parameters, in the words of this command's options."""
    for name in ("links", "touchpoint", "channel", "paper", "columns"):
        message = message.replace(f"{name}=", f"--{name} ").replace(f"{name}:", f"--{name}:")
    return message


def init_app(app: Flask) -> None:
    app.cli.add_command(qr_sheet_command)
