"""CSV files of rows to import, read strictly (UTF-8, a header row naming known columns, at most
10,000 rows, no formula cells), and the results of an import written back as CSV that is safe to
open in a spreadsheet.

A cell that starts with `=`, `+`, `-` or `@` would run as a formula once a file holding it (our
results, a report) is opened in a spreadsheet, so such cells are refused rather than stored. No
field we import is a number that could be negative, so a leading `-` is never needed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shortener.bulk import MAX_ROWS, InvalidRowError, Outcome, Report, Row
from shortener.errors import BadRequestError, DomainError, InvalidFieldError

FORMULA_START = ("=", "+", "-", "@")
SHOWN_CELLS = 20  # formula cells named in an error's message and details
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


class EmptyFileError(BadRequestError):
    code = "empty_file"


class EncodingError(BadRequestError):
    code = "bad_encoding"


class MalformedCsvError(BadRequestError):
    code = "bad_csv"


class TooManyRowsError(DomainError):
    code = "too_many_rows"
    status = 413

    def __init__(self, limit: int = MAX_ROWS) -> None:
        super().__init__(
            f"The file has more than {limit:,} rows; split it into files of {limit:,} or fewer.",
            details={"limit": limit},
        )


class HeaderError(DomainError):
    """The header row names a column twice, a column we do not know, or lacks a required one."""

    code = "bad_header"
    status = 422


class FormulaCellError(DomainError):
    code = "formula_cell"
    status = 422


class NoRowsError(DomainError):
    code = "no_rows"
    status = 422


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV file's header (stripped) and its non-blank records with their row numbers: row 1 is
    the first record after the header; a blank record keeps its number but is left out."""

    header: tuple[str, ...]
    records: list[tuple[int, list[str]]]


def read_table(data: bytes, *, max_rows: int = MAX_ROWS) -> Table:
    """A CSV file's header and records; comma-, semicolon- or tab-separated (whichever the
    header row uses most), UTF-8 with or without a byte-order mark."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EncodingError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start:,}). "
            "Save it as CSV UTF-8 and try again."
        ) from None
    if not text.strip():
        raise EmptyFileError("The file is empty: it needs a header row and at least one row.")
    first_line = text.lstrip().split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header: list[str] = []
        while not any(cell.strip() for cell in header):
            header = next(reader)
        records: list[tuple[int, list[str]]] = []
        for number, cells in enumerate(reader, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            if len(records) == max_rows:
                raise TooManyRowsError(max_rows)
            records.append((number, cells))
    except csv.Error as exc:
        raise MalformedCsvError(
            f"The file is not valid CSV near line {reader.line_num:,}: {exc}."
        ) from None
    return Table(tuple(cell.strip() for cell in header), records)


def refuse_formulas(table: Table, columns: Sequence[str] | None = None) -> None:
    """Refuse the file if any cell (of the `columns` given, else every cell) starts a formula."""
    indexes = [
        i for i, name in enumerate(table.header) if columns is None or name in columns
    ]
    found: list[dict[str, Any]] = []
    count = 0
    for number, cells in table.records:
        for i in indexes:
            if i < len(cells) and is_formula(cells[i]):
                count += 1
                if len(found) < SHOWN_CELLS:
                    found.append({"row": number, "column": table.header[i]})
    if count:
        where = ", ".join(f"row {cell['row']} column {cell['column']}" for cell in found[:5])
        more = f" and {count - 5:,} more" if count > 5 else ""
        raise FormulaCellError(
            f"{count:,} cell{'s' if count > 1 else ''} start{'' if count > 1 else 's'} with "
            f"=, +, - or @ ({where}{more}); such cells run as formulas in a spreadsheet and are "
            "not accepted. Remove the sign, or the cell.",
            details={"count": count, "cells": found},
        )


def is_formula(cell: str) -> bool:
    return cell.lstrip(" \t\r\n").startswith(FORMULA_START)


def normalise_name(name: str) -> str:
    """A column name as we compare it: `Redirect Status` and `redirect-status` are one."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


# --- our own columns: those of the single create endpoints ----------------------------------------

Convert = Callable[[str, str], Any]


def _text(name: str, cell: str) -> Any:
    return cell


def _integer(name: str, cell: str) -> Any:
    digits = cell.replace(",", "").replace(" ", "")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        raise InvalidFieldError(name, f"must be a whole number, not {cell!r}")
    return int(digits)


def _boolean(name: str, cell: str) -> Any:
    word = cell.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidFieldError(name, f"must be true or false, not {cell!r}")


def _codes(name: str, cell: str) -> Any:
    return [code for code in cell.replace(",", " ").replace(";", " ").split() if code]


def _survey(fields: dict[str, Any]) -> dict[str, Any]:
    """`survey_kind`, `survey_question` and `survey_then` cells as the `survey` object."""
    parts = {name: fields.pop(f"survey_{name}") for name in ("kind", "question", "then")
             if f"survey_{name}" in fields}
    if parts and "kind" not in parts:
        raise InvalidFieldError("survey_kind", "is required with survey_question or survey_then")
    if parts:
        fields["survey"] = parts
    return fields


@dataclass(frozen=True, slots=True)
class Columns:
    """The columns of one kind of row: those a header must name, and each cell's reading."""

    required: frozenset[str]
    convert: Mapping[str, Convert]
    combine: Callable[[dict[str, Any]], dict[str, Any]] = lambda fields: fields


LINK_COLUMNS = Columns(
    required=frozenset({"url", "touchpoint", "stage"}),
    convert={
        **{name: _text for name in ("url", "touchpoint", "stage", "slug", "campaign", "title",
                                    "expires_at", "starts_at", "fallback_url", "survey_kind",
                                    "survey_question", "survey_then")},
        "redirect_status": _integer,
        "utm": _boolean,
        "track_conversions": _boolean,
    },
    combine=_survey,
)
TOUCHPOINT_COLUMNS = Columns(
    required=frozenset({"key", "name", "channel"}),
    convert={
        **{name: _text for name in ("key", "name", "channel", "kind")},
        "exposure": _integer,
        "coupons": _codes,
    },
)

def rows_from_csv(
    data: bytes, columns: Columns, *, defaults: Mapping[str, Any] | None = None
) -> list[Row]:
    """The rows of a CSV file of our own columns; `defaults` fill the cells a row leaves blank
    (and the columns a header leaves out)."""
    table = read_table(data)
    defaults = dict(defaults or {})
    names = [normalise_name(name) for name in table.header]
    _check_header(names, columns, provided=set(defaults))
    refuse_formulas(table)
    if not table.records:
        raise NoRowsError("The file has a header row but no rows under it.")
    rows: list[Row] = []
    for number, cells in table.records:
        if len(cells) > len(names):
            error = InvalidRowError(
                f"Row {number} has {len(cells)} cells; the header names {len(names)} columns."
            )
            rows.append(Row(number, None, error))
            continue
        fields = dict(defaults)
        try:
            for name, cell in zip(names, cells, strict=False):
                if cell.strip():
                    fields[name] = columns.convert[name](name, cell.strip())
            rows.append(Row(number, columns.combine(fields)))
        except DomainError as exc:
            rows.append(Row(number, None, exc))
    return rows


def _check_header(names: list[str], columns: Columns, *, provided: set[str]) -> None:
    known = sorted(columns.convert)
    twice = sorted({name for name in names if names.count(name) > 1})
    unknown = [name or "(blank)" for name in names if name not in columns.convert]
    missing = sorted(columns.required - set(names) - provided)
    problems = []
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)} (known: {', '.join(known)})")
    if missing:
        problems.append(f"no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}")
    if twice:
        problems.append(f"{', '.join(twice)} named twice")
    if problems:
        raise HeaderError(
            f"The header row is not right: {'; '.join(problems)}.",
            details={"unknown": unknown, "missing": missing, "duplicate": twice},
        )


# --- results --------------------------------------------------------------------------------------


def results_csv(
    report: Report,
    columns: Sequence[str],
    describe: Callable[[Outcome], Mapping[str, Any]],
) -> str:
    """One line per row: its number, `created`, `valid` (a dry run) or `error`, the `columns`
    that `describe` gives, and the error's code and message."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "status", *columns, "error_code", "error"])
    for outcome in report.outcomes:
        described = describe(outcome)
        status = "error" if outcome.error else ("created" if outcome.created else "valid")
        error = outcome.error
        writer.writerow(_safe([
            outcome.row, status, *(described.get(name) for name in columns),
            error.code if error else "", error.message if error else "",
        ]))
    return out.getvalue()


def _safe(cells: Iterable[Any]) -> list[str]:
    """Cells as text a spreadsheet shows rather than runs (a formula gets a leading quote)."""
    shown = ["" if cell is None else str(cell) for cell in cells]
    return [f"'{cell}" if is_formula(cell) else cell for cell in shown]
