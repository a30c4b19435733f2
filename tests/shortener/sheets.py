"""QR sheets read back as a person with a printer and a phone would: each page rasterised by
PDFium, every code on it decoded by zxing-cpp, and the page's text as PDF readers extract it."""

from __future__ import annotations

from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import zxingcpp

# 200 dpi: a module of the smallest code a sheet draws is then several pixels wide.
SCALE = 200 / 72


@dataclass(frozen=True, slots=True)
class Code:
    text: str
    x: int  # the centre of the code on the page's raster, from the left
    y: int  # from the top


@dataclass(frozen=True, slots=True)
class SheetPage:
    width: float  # points
    height: float
    codes: list[Code]  # in reading order: row by row, left to right
    text: str
    images: int  # image objects: a code drawn as a bitmap would be one

    @property
    def urls(self) -> list[str]:
        return [code.text for code in self.codes]


def _reading_order(codes: list[Code], *, gap: float) -> list[Code]:
    """Row by row (centres less than `gap` apart share a row), each left to right."""
    rows: list[list[Code]] = []
    for code in sorted(codes, key=lambda c: c.y):
        if rows and code.y - rows[-1][0].y < gap:
            rows[-1].append(code)
        else:
            rows.append([code])
    return [code for row in rows for code in sorted(row, key=lambda c: c.x)]


def read_sheet(pdf: bytes) -> list[SheetPage]:
    assert pdf.startswith(b"%PDF-"), pdf[:40]
    document = pdfium.PdfDocument(pdf)
    pages: list[SheetPage] = []
    try:
        for page in document:
            width, height = page.get_size()
            raster = page.render(scale=SCALE).to_pil()
            found = []
            for barcode in zxingcpp.read_barcodes(raster):
                assert barcode.format == zxingcpp.BarcodeFormat.QRCode
                corners = barcode.position
                x = (corners.top_left.x + corners.bottom_right.x) // 2
                y = (corners.top_left.y + corners.bottom_right.y) // 2
                found.append(Code(barcode.text, x, y))
            found = _reading_order(found, gap=raster.height / 40)
            text = page.get_textpage().get_text_bounded()
            images = sum(
                1 for obj in page.get_objects() if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE
            )
            pages.append(SheetPage(width, height, found, text, images))
    finally:
        document.close()
    return pages
