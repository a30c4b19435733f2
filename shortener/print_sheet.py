"""The QR sheet: a PDF of codes in a grid, one a cell, each with its touchpoint, stage and short
URL written under it. The codes are vector shapes, the same modules the single codes have."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from shortener import schemas
from shortener.links import scan_url, short_url
from shortener.models import Link
from shortener.print_fonts import BOLD, REGULAR, fit, ttf
from shortener.qr import QROptions, code_matrix, dark_runs

PAPERS = {"a4": A4, "letter": LETTER}
PAPER_DEFAULT = "a4"
COLUMNS_DEFAULT = 3
COLUMNS_MAX = 6
# Points (1/72 in): the page's margin, which most office printers can print up to.
PAGE_MARGIN = 36.0
FOOTER = 16.0
MIN_FONT = 5.0
GUIDE = (0.75, 0.75, 0.75)  # the cutting guides: light grey, dashed
# The modules of the single codes with default options: quiet zone of 4, error correction M.
CODE_OPTIONS = QROptions()


@dataclass(frozen=True, slots=True)
class SheetEntry:
    """One cell: what the code encodes and the three lines under it."""

    scan_url: str
    short_url: str
    touchpoint: str
    stage: str

    @classmethod
    def of(cls, link: Link, *, scheme: str) -> SheetEntry:
        return cls(
            scan_url=scan_url(link, scheme=scheme),
            short_url=short_url(link, scheme=scheme),
            touchpoint=link.touchpoint.name,
            stage=link.stage.name,
        )


def _paper(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    paper = value.strip().lower()
    if paper not in PAPERS:
        raise ValueError(f"must be a4 or letter, got {value.strip()[:40]!r}")
    return paper


def _columns(value: Any) -> Any:
    # Digits only: int() would also take "1_000" and non-Latin digits.
    text = value.strip() if isinstance(value, str) else str(value)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:3]) <= COLUMNS_MAX:
        raise ValueError(f"must be a whole number from 1 to {COLUMNS_MAX}")
    return int(text)


class LayoutQuery(schemas.Query):
    """How a sheet is laid out, as a query string (or a form) says it."""

    paper: Annotated[
        str, BeforeValidator(_paper), WithJsonSchema({"enum": list(PAPERS)})
    ] = Field(PAPER_DEFAULT, description="any letter case")
    columns: Annotated[
        int,
        BeforeValidator(_columns),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": COLUMNS_MAX}),
    ] = Field(COLUMNS_DEFAULT, description="codes across the page")


@dataclass(frozen=True, slots=True)
class SheetLayout:
    paper: str = PAPER_DEFAULT
    columns: int = COLUMNS_DEFAULT

    def __post_init__(self) -> None:
        if self.paper not in PAPERS:
            raise ValueError(f"paper must be one of {', '.join(PAPERS)}, got {self.paper!r}")
        if not 1 <= self.columns <= COLUMNS_MAX:
            raise ValueError(f"columns must be within 1..{COLUMNS_MAX}, got {self.columns}")

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> SheetLayout:
        """`paper` (a4 or letter) and `columns` (1 to 6) of a query string or a form, its other
        fields left aside; blank means the default."""
        known = {name: value for name, value in args.items() if name in LayoutQuery.model_fields}
        return cls.of(schemas.validate_query(LayoutQuery, known))

    @classmethod
    def of(cls, query: LayoutQuery) -> SheetLayout:
        return cls(paper=query.paper, columns=query.columns)

    @property
    def per_page(self) -> int:
        return self.columns * _Grid.of(self).rows


@dataclass(frozen=True, slots=True)
class _Grid:
    """Where the cells of a page are, in points from the page's bottom left corner."""

    width: float
    height: float
    columns: int
    rows: int
    cell_width: float
    cell_height: float
    pad: float
    code: float  # the side of a code, quiet zone included
    font: float
    line: float

    @classmethod
    def of(cls, layout: SheetLayout) -> _Grid:
        width, height = PAPERS[layout.paper]
        usable_width = width - 2 * PAGE_MARGIN
        usable_height = height - 2 * PAGE_MARGIN - FOOTER
        cell_width = usable_width / layout.columns
        pad = min(8.0, cell_width * 0.05)
        code = cell_width - 2 * pad
        font = max(6.0, min(11.0, cell_width / 15))
        line = font * 1.3
        cell_height = code + 3 * line + 2 * pad
        rows = max(1, math.floor(usable_height / cell_height))
        return cls(
            width, height, layout.columns, rows, cell_width, cell_height, pad, code, font, line
        )

    def cell_origin(self, index: int) -> tuple[float, float]:
        """The top left corner of the `index`th cell of a page, filled row by row."""
        row, column = divmod(index, self.columns)
        used = self.rows * self.cell_height
        top = self.height - PAGE_MARGIN - (self.height - 2 * PAGE_MARGIN - FOOTER - used) / 2
        return PAGE_MARGIN + column * self.cell_width, top - row * self.cell_height


def render_sheet(
    entries: Sequence[SheetEntry], layout: SheetLayout, *, title: str = "QR codes"
) -> bytes:
    """The PDF of `entries` in their order, as many pages as they need."""
    for name in (REGULAR, BOLD):
        pdfmetrics.registerFont(ttf(name))
    grid = _Grid.of(layout)
    per_page = grid.columns * grid.rows
    pages = max(1, math.ceil(len(entries) / per_page))
    buffer = io.BytesIO()
    # Invariant: the same codes give the same bytes (no creation time or random document id).
    canvas = Canvas(buffer, pagesize=(grid.width, grid.height), invariant=True)
    canvas.setTitle(title)
    canvas.setCreator("Touchlink")
    canvas.setSubject(f"{len(entries)} QR codes")
    for page in range(pages):
        batch = entries[page * per_page : (page + 1) * per_page]
        for index, entry in enumerate(batch):
            _draw_cell(canvas, grid, *grid.cell_origin(index), entry)
        _draw_footer(canvas, grid, page + 1, pages, len(entries))
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw_cell(canvas: Canvas, grid: _Grid, left: float, top: float, entry: SheetEntry) -> None:
    canvas.saveState()
    canvas.setStrokeColorRGB(*GUIDE)
    canvas.setLineWidth(0.3)
    canvas.setDash(2, 2)
    canvas.rect(left, top - grid.cell_height, grid.cell_width, grid.cell_height, stroke=1, fill=0)
    canvas.restoreState()

    matrix = code_matrix(entry.scan_url, CODE_OPTIONS)
    module = grid.code / len(matrix)
    code_left, code_top = left + grid.pad, top - grid.pad
    path = canvas.beginPath()
    for x, y, length in dark_runs(matrix):
        path.rect(code_left + x * module, code_top - (y + 1) * module, length * module, module)
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawPath(path, stroke=0, fill=1)

    centre = left + grid.cell_width / 2
    room = grid.cell_width - 2 * grid.pad
    baseline = code_top - grid.code - grid.line * 0.85
    lines = ((entry.touchpoint, BOLD), (entry.stage, REGULAR), (entry.short_url, REGULAR))
    for text, font in lines:
        shown, size = fit(text, width=room, size=grid.font, min_size=MIN_FONT, name=font)
        canvas.setFont(font, size)
        canvas.drawCentredString(centre, baseline, shown)
        baseline -= grid.line


def _draw_footer(canvas: Canvas, grid: _Grid, page: int, pages: int, codes: int) -> None:
    canvas.setFont(REGULAR, 7)
    canvas.setFillColorRGB(0.45, 0.45, 0.45)
    canvas.drawString(
        PAGE_MARGIN, PAGE_MARGIN / 2, f"{codes:,} QR code{'s' if codes != 1 else ''} · Touchlink"
    )
    canvas.drawRightString(grid.width - PAGE_MARGIN, PAGE_MARGIN / 2, f"Page {page} of {pages}")
