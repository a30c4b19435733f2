"""The one typeface of printed codes (the QR sheet's PDF and the captions of single codes):
Bitstream Vera Sans, which the PDF library ships, so every machine draws the same letters."""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources
from pathlib import Path

from reportlab.pdfbase.ttfonts import TTFont

REGULAR = "TouchlinkVera"
BOLD = "TouchlinkVeraBold"
_FILES = {REGULAR: "Vera.ttf", BOLD: "VeraBd.ttf"}
# Drawn in place of a character the typeface has no glyph for, rather than an empty box.
MISSING = "?"


def font_path(name: str = REGULAR) -> Path:
    return Path(str(resources.files("reportlab") / "fonts" / _FILES[name]))


@cache
def ttf(name: str = REGULAR) -> TTFont:
    """The typeface as the PDF library loads it (parsed once per process)."""
    return TTFont(name, str(font_path(name)))


@cache
def _covered() -> frozenset[int]:
    # The bold and the regular cut hold the same characters.
    return frozenset(ttf(REGULAR).face.charToGlyph)


def printable(text: str) -> str:
    """`text` in characters the typeface can draw: an accented letter it lacks loses its
    accent (ǹ → n), anything else it lacks becomes '?'; control characters become spaces."""
    covered = _covered()
    out: list[str] = []
    for char in text:
        if char in "\t\r\n" or unicodedata.category(char).startswith("C"):
            out.append(" ")
        elif ord(char) in covered:
            out.append(char)
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append(base if base and all(ord(c) in covered for c in base) else MISSING)
    return " ".join("".join(out).split())


def fit(text: str, *, width: float, size: float, min_size: float, name: str = REGULAR
        ) -> tuple[str, float]:
    """`text` (made printable) and a font size at most `size` at which it spans at most `width`:
    smaller down to `min_size`, then cut short with an ellipsis."""
    face = ttf(name)
    text = printable(text)
    natural = face.stringWidth(text, size)
    if natural <= width:
        return text, size
    scaled = size * width / natural
    if scaled >= min_size:
        return text, scaled
    while text and face.stringWidth(text + "…", min_size) > width:
        text = text[:-1]
    return text.rstrip() + "…", min_size
