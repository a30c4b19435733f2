"""The CSV exports of other link shorteners read as rows of our links: their short codes kept as
slugs, their long URLs as destinations, their titles as titles. The touchpoint, stage and
campaign come from the file's own `touchpoint`, `stage` and `campaign` columns where a row has
them, else from the defaults given (`--touchpoint`, `--stage`, `--campaign`).

Column names are compared without case, spaces, `-` or `_` (`Long URL`, `long_url` and `longUrl`
are one). Each row also keeps the domain of its short link (`Imported.domains`): links are
created on our default domain today, and a per-row domain can be passed on once domains exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shortener.bulk import Row
from shortener.bulk_csv import HeaderError, NoRowsError, Table, read_table, refuse_formulas
from shortener.errors import InvalidFieldError

TITLE_LENGTH = 300  # our links' title column; longer page titles are cut
OWN_COLUMNS = ("touchpoint", "stage", "campaign")
_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True, slots=True)
class Source:
    """One product's export: which of its columns hold each of our fields, best first."""

    name: str
    url: tuple[str, ...]  # the long URL
    short: tuple[str, ...]  # the short code, or a short URL whose path is the code
    title: tuple[str, ...] = ("title",)
    domain: tuple[str, ...] = ()  # the short link's host, where a column gives it apart
    code_of: Callable[[str], str] = lambda cell: cell


def _short_code(cell: str) -> str:
    """`https://bit.ly/abc`, `bit.ly/abc` or `/abc/` → `abc`."""
    value = cell.strip().split()[0] if cell.strip() else ""
    if "/" not in value:
        return value
    if "//" not in value and not value.startswith("/"):
        value = f"//{value}"
    return urlsplit(value).path.strip("/")


def _host(cell: str) -> str | None:
    value = cell.strip().split()[0] if cell.strip() else ""
    if "/" not in value or value.startswith("/"):
        return None
    return urlsplit(value if "//" in value else f"//{value}").hostname


SOURCES: dict[str, Source] = {
    # Bitly's "Export" of links: Link (bit.ly/…), Custom Link (a branded back-half, which is
    # what was printed, so it wins when a row has one) and Destination URL; older exports and
    # the API name them long_url, link, custom_bitlinks.
    "bitly": Source(
        name="Bitly",
        url=("destinationurl", "longurl", "originalurl"),
        short=("customlink", "custombitlylink", "custombitlinks", "link", "bitlylink",
               "bitlink", "shortlink", "shorturl"),
        code_of=_short_code,
    ),
    # Shlink's export of short URLs (the web client's "Export" button): createdAt, domain,
    # shortCode, shortUrl, longUrl, title, tags, visits; also the column names of Shlink's own
    # CSV import (Long URL, Short code, Domain, Title).
    "shlink": Source(
        name="Shlink",
        url=("longurl",),
        short=("shortcode", "shorturl"),
        domain=("domain",),
        code_of=_short_code,
    ),
    # YOURLS has no export of its own: the YOURLS Import/Export plugin writes source (the
    # keyword as /keyword/), target and hits; a dump of the yourls_url table has keyword, url,
    # title, timestamp, ip and clicks.
    "yourls": Source(
        name="YOURLS",
        url=("target", "url", "longurl"),
        short=("keyword", "source", "shorturl"),
        code_of=_short_code,
    ),
}


@dataclass(frozen=True, slots=True)
class Imported:
    rows: list[Row]
    sources: dict[int, str]  # each row's short link (or code) as the export gives it
    domains: dict[int, str | None]  # the host of each row's short link, where known


def read_export(
    data: bytes, source: str, *, defaults: Mapping[str, Any] | None = None
) -> Imported:
    """The rows of `source`'s export, as fields of our links (see the module's docstring)."""
    spec = SOURCES[source]
    table = read_table(data)
    columns = {squash(name): i for i, name in reversed(list(enumerate(table.header)))}
    url_at = _first(columns, spec.url)
    short_at = [columns[name] for name in spec.short if name in columns]
    if url_at is None or not short_at:
        wanted = []
        if url_at is None:
            wanted.append(f"the long URL ({' or '.join(spec.url)})")
        if not short_at:
            wanted.append(f"the short link ({' or '.join(spec.short)})")
        raise HeaderError(
            f"This does not look like a {spec.name} export: no column for "
            f"{' and '.join(wanted)}.",
            details={"missing": wanted},
        )
    title_at = _first(columns, spec.title)
    domain_at = _first(columns, spec.domain)
    own = {name: columns[name] for name in OWN_COLUMNS if name in columns}
    read = [url_at, *short_at, *(i for i in (title_at, domain_at) if i is not None),
            *own.values()]
    refuse_formulas(table, [table.header[i] for i in read])
    if not table.records:
        raise NoRowsError("The file has a header row but no rows under it.")
    return _rows(table, spec, url_at, short_at, title_at, domain_at, own, dict(defaults or {}))


def _rows(
    table: Table,
    spec: Source,
    url_at: int,
    short_at: list[int],
    title_at: int | None,
    domain_at: int | None,
    own: dict[str, int],
    defaults: dict[str, Any],
) -> Imported:
    imported = Imported([], {}, {})
    for number, cells in table.records:
        def cell(i: int | None) -> str:
            return cells[i].strip() if i is not None and i < len(cells) else ""  # noqa: B023

        fields: dict[str, Any] = {**defaults, "url": cell(url_at)}
        fields.update({name: cell(i) for name, i in own.items() if cell(i)})
        short = next((cell(i) for i in short_at if cell(i)), "")
        title = _SPACE.sub(" ", cell(title_at)).strip()[:TITLE_LENGTH].strip()
        if title:
            fields["title"] = title
        imported.sources[number] = short
        imported.domains[number] = cell(domain_at) or _host(short)
        code = spec.code_of(short)
        if not code:
            error = InvalidFieldError("slug", f"the {spec.name} row has no short code")
            imported.rows.append(Row(number, None, error))
            continue
        fields["slug"] = code
        if not fields["url"]:
            del fields["url"]  # the single create's own "url: is required"
        imported.rows.append(Row(number, fields))
    return imported


def _first(columns: dict[str, int], names: tuple[str, ...]) -> int | None:
    return next((columns[name] for name in names if name in columns), None)
