"""`touchlink import links|touchpoints FILE.csv`: many rows at once, from our own CSV columns or
(links) from the export of Bitly, Shlink or YOURLS, with a progress bar, a summary and a CSV of
the result of every row."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from shortener import bulk
from shortener.bulk import Outcome, Report, Row, RowsInvalidError
from shortener.bulk_csv import LINK_COLUMNS, TOUCHPOINT_COLUMNS, results_csv, rows_from_csv
from shortener.db import utcnow
from shortener.errors import DomainError
from shortener.import_formats import SOURCES, read_export
from shortener.links import short_url
from shortener.runtime import runtime
from shortener.unit_of_work import transaction

import_cli = AppGroup("import", help="Create many links or touchpoints from a CSV file.")
SHOWN_ERRORS = 10
LINK_RESULT_COLUMNS = ("slug", "short_url", "url")
TOUCHPOINT_RESULT_COLUMNS = ("key", "name")

FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
OUTPUT = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result of every row to this CSV file (row, status, what was made, error).",
)
ATOMIC = click.option(
    "--atomic", is_flag=True, help="All or nothing: a single bad row and nothing is written."
)


@import_cli.command("links")
@FILE
@click.option(
    "--from", "source", type=click.Choice(["touchlink", *SOURCES]), default="touchlink",
    show_default=True, help="Whose CSV columns the file has: ours, or another product's export.",
)
@click.option("--touchpoint", help="Touchpoint key for the rows that name none.")
@click.option("--stage", help="Stage key for the rows that name none.")
@click.option("--campaign", help="Campaign for the rows that name none.")
@click.option("--domain", help="The short domain the links go on (default: the default one).")
@ATOMIC
@OUTPUT
def import_links(
    file: Path,
    source: str,
    touchpoint: str | None,
    stage: str | None,
    campaign: str | None,
    domain: str | None,
    atomic: bool,
    output: Path | None,
) -> None:
    """Create the links of FILE.csv; slugs (short codes) of other products are kept."""
    rt = runtime()
    settings = rt.settings
    defaults = {
        name: value
        for name, value in (("touchpoint", touchpoint), ("stage", stage), ("campaign", campaign))
        if value
    }
    data = _read(file)
    sources: Mapping[int, str] = {}
    with _refusals():
        if source == "touchlink":
            rows = rows_from_csv(data, LINK_COLUMNS, defaults=defaults)
        else:
            imported = read_export(data, source, defaults=defaults)
            rows, sources = imported.rows, imported.sources

    def run(progress: Callable[[int], None]) -> Report:
        with transaction(rt.sessions) as session:
            return bulk.import_links(
                session, rows, domain=domain, own_hosts=rt.own_hosts(),
                default_status=settings.default_redirect_status, atomic=atomic,
                progress=progress,
            )

    report = _run("links", rows, run)
    fields = {row.number: row.fields for row in rows}

    def describe(outcome: Outcome) -> dict[str, Any]:
        link = outcome.created
        given = fields.get(outcome.row) or {}
        described = {
            "slug": link.slug if link else given.get("slug"),
            "short_url": short_url(link, scheme=settings.scheme) if link else "",
            "url": link.destination if link else given.get("url"),
        }
        if sources:
            described["source"] = sources.get(outcome.row, "")
        return described

    columns = (*LINK_RESULT_COLUMNS, "source") if sources else LINK_RESULT_COLUMNS
    _finish(report, "links", columns, describe, output)


@import_cli.command("touchpoints")
@FILE
@ATOMIC
@OUTPUT
def import_touchpoints(file: Path, atomic: bool, output: Path | None) -> None:
    """Create the touchpoints of FILE.csv (columns key, name, channel, kind, exposure, coupons)."""
    rt = runtime()
    data = _read(file)
    with _refusals():
        rows = rows_from_csv(data, TOUCHPOINT_COLUMNS)

    def run(progress: Callable[[int], None]) -> Report:
        with transaction(rt.sessions) as session:
            return bulk.import_touchpoints(
                session, rows, today=rt.settings.today(utcnow()), atomic=atomic,
                progress=progress,
            )

    report = _run("touchpoints", rows, run)
    fields = {row.number: row.fields for row in rows}

    def describe(outcome: Outcome) -> dict[str, Any]:
        touchpoint = outcome.created
        given = fields.get(outcome.row) or {}
        return {
            "key": touchpoint.key if touchpoint else given.get("key"),
            "name": touchpoint.name if touchpoint else given.get("name"),
        }

    _finish(report, "touchpoints", TOUCHPOINT_RESULT_COLUMNS, describe, output)


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise click.FileError(str(file), hint=exc.strerror or str(exc)) from None


class _refusals:
    """A refusal of the whole file (its header, its encoding, its size) ends the command."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> None:
        if isinstance(exc, DomainError):
            raise click.ClickException(exc.message) from None


def _run(what: str, rows: list[Row], run: Callable[[Callable[[int], None]], Report]) -> Report:
    """The import under a progress bar; an all-or-nothing import refused is its report too."""
    with click.progressbar(
        length=2 * len(rows), label=f"Importing {len(rows):,} {what}", file=sys.stderr
    ) as bar:
        try:
            report = run(bar.update)
        except RowsInvalidError as exc:
            report = exc.report
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        bar.update(2 * len(rows) - bar.pos)  # rows refused are never written
    return report


def _finish(
    report: Report,
    what: str,
    columns: tuple[str, ...],
    describe: Callable[[Outcome], Mapping[str, Any]],
    output: Path | None,
) -> None:
    """Write the results file, print the summary and the first errors; exit 1 on any error."""
    if output is not None:
        try:
            output.write_text(results_csv(report, columns, describe), encoding="utf-8")
        except OSError as exc:
            raise click.FileError(str(output), hint=exc.strerror or str(exc)) from None
    failed = report.failed
    rows = len(report.outcomes)
    if failed and report.atomic:
        summary = f"Nothing imported: {len(failed):,} of {rows:,} rows are invalid (--atomic)."
    else:
        summary = f"Imported {report.created:,} of {rows:,} {what}; {len(failed):,} refused."
    click.echo(summary)
    for outcome in failed[:SHOWN_ERRORS]:
        assert outcome.error is not None
        click.echo(f"  row {outcome.row}: {outcome.error.code}: {outcome.error.message}",
                   err=True)
    if len(failed) > SHOWN_ERRORS:
        more = len(failed) - SHOWN_ERRORS
        where = f" (see {output})" if output else " (-o FILE writes them all)"
        click.echo(f"  … and {more:,} more{where}", err=True)
    if output is not None:
        click.echo(f"Wrote the result of every row to {output}.")
    if failed:
        sys.exit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(import_cli)
