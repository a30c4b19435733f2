"""QR parameters parsed and clamped from a query string, rendering of a code to SVG or PNG, and the
image response the API and the pages both send."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import qrcode
from flask import Response
from PIL import Image, ImageDraw
from qrcode import constants

from shortener.errors import InvalidParameterError

SIZE_DEFAULT = 512
SIZE_MIN = 64
SIZE_MAX = 4096
MARGIN_DEFAULT = 4
MARGIN_MIN = 0
MARGIN_MAX = 16
ECC_DEFAULT = "M"
FG_DEFAULT = "#000000"
BG_DEFAULT = "#ffffff"
TRANSPARENT = "transparent"
# WCAG contrast ratio below which phone cameras stop telling dark modules from light ones reliably.
MIN_CONTRAST = 2.0

_ECC_LEVELS = {
    "L": constants.ERROR_CORRECT_L,
    "M": constants.ERROR_CORRECT_M,
    "Q": constants.ERROR_CORRECT_Q,
    "H": constants.ERROR_CORRECT_H,
}
# ASCII digits only: int() would also take "1_000" and non-Latin digits.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_COLOUR = re.compile(r"#?([0-9a-f]{3}|[0-9a-f]{6})", re.IGNORECASE)
_NORMAL_COLOUR = re.compile(r"#[0-9a-f]{6}")
_SVG_NS = "http://www.w3.org/2000/svg"


@dataclass(frozen=True, slots=True)
class QROptions:
    """How to draw a code: `size` in pixels including the margin, `margin` in modules."""

    size: int = SIZE_DEFAULT
    margin: int = MARGIN_DEFAULT
    ecc: str = ECC_DEFAULT
    fg: str = FG_DEFAULT
    bg: str = BG_DEFAULT

    def __post_init__(self) -> None:
        # The renderers write these values into SVG markup verbatim, so only normalised ones may
        # exist; callers with untrusted input go through from_args, which clamps and explains.
        if not SIZE_MIN <= self.size <= SIZE_MAX:
            raise ValueError(f"size must be within {SIZE_MIN}..{SIZE_MAX}, got {self.size}")
        if not MARGIN_MIN <= self.margin <= MARGIN_MAX:
            raise ValueError(f"margin must be within {MARGIN_MIN}..{MARGIN_MAX}, got {self.margin}")
        if self.ecc not in _ECC_LEVELS:
            raise ValueError(f"ecc must be one of L, M, Q, H, got {self.ecc!r}")
        if not _NORMAL_COLOUR.fullmatch(self.fg):
            raise ValueError(f"fg must be a lowercase #rrggbb colour, got {self.fg!r}")
        if self.bg != TRANSPARENT and not _NORMAL_COLOUR.fullmatch(self.bg):
            raise ValueError(
                f"bg must be a lowercase #rrggbb colour or 'transparent', got {self.bg!r}"
            )

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QROptions:
        """Parse query-string values: numbers are clamped, anything malformed or unscannable raises.

        A blank value counts as absent, so an empty field of a GET form means the default.
        Raises InvalidParameterError naming the offending parameter.
        """
        size = _parse_int(args, "size", SIZE_DEFAULT, SIZE_MIN, SIZE_MAX)
        margin = _parse_int(args, "margin", MARGIN_DEFAULT, MARGIN_MIN, MARGIN_MAX)
        raw_ecc = args.get("ecc", "").strip()
        ecc = raw_ecc.upper() or ECC_DEFAULT
        if ecc not in _ECC_LEVELS:
            raise InvalidParameterError(
                "ecc",
                f"must be one of L, M, Q or H (error correction level), got {_shown(raw_ecc)}",
            )
        fg = _parse_colour(args, "fg", FG_DEFAULT, allow_transparent=False)
        bg = _parse_colour(args, "bg", BG_DEFAULT, allow_transparent=True)
        # A transparent background takes the colour of whatever the code is placed on, unknown here.
        if bg != TRANSPARENT:
            if fg == bg:
                raise InvalidParameterError(
                    "fg", f"is the same colour as bg ({bg}), so the code would be invisible"
                )
            ratio = _contrast_ratio(fg, bg)
            if ratio < MIN_CONTRAST:
                raise InvalidParameterError(
                    "fg",
                    f"contrast between fg {fg} and bg {bg} is {ratio:.2f}:1, too low to scan; "
                    f"choose colours at least {MIN_CONTRAST:.0f}:1 apart in lightness",
                )
        return cls(size=size, margin=margin, ecc=ecc, fg=fg, bg=bg)


def render_svg(data: str, options: QROptions) -> bytes:
    """A standalone vector SVG of `options.size` px square; the margin is inside that size."""
    matrix = _build_matrix(data, options)
    modules = len(matrix)
    path = "".join(f"M{x} {y}h{length}v1h-{length}z" for x, y, length in _dark_runs(matrix))
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="{_SVG_NS}" width="{options.size}" height="{options.size}" '
        f'viewBox="0 0 {modules} {modules}" shape-rendering="crispEdges">',
    ]
    if options.bg != TRANSPARENT:
        lines.append(f'<rect width="{modules}" height="{modules}" fill="{options.bg}"/>')
    lines.append(f'<path fill="{options.fg}" d="{path}"/>')
    lines.append("</svg>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_png(data: str, options: QROptions) -> bytes:
    """A PNG exactly `options.size` px square with the code centred on bg, unless it is denser.

    Every module is the same whole number of pixels (size // modules including the margin), so the
    remainder becomes extra background around the margin. A code with more modules than `size`
    pixels is drawn at one pixel per module instead, the image then being that many pixels wide.
    A transparent bg gives an RGBA image whose light modules are fully transparent white.
    """
    matrix = _build_matrix(data, options)
    modules = len(matrix)
    box = max(1, options.size // modules)
    side = max(options.size, modules * box)
    offset = (side - modules * box) // 2
    background: tuple[int, ...]
    foreground: tuple[int, ...]
    if options.bg == TRANSPARENT:
        mode, background, foreground = "RGBA", (255, 255, 255, 0), (*_rgb(options.fg), 255)
    else:
        mode, background, foreground = "RGB", _rgb(options.bg), _rgb(options.fg)
    image = Image.new(mode, (side, side), background)
    draw = ImageDraw.Draw(image)
    for x, y, length in _dark_runs(matrix):
        left, top = offset + x * box, offset + y * box
        draw.rectangle((left, top, left + length * box - 1, top + box - 1), fill=foreground)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_response(data: str, args: Mapping[str, str], *, fmt: str, name: str) -> Response:
    """The code of `data` as `fmt` (svg or png) drawn with the options of `args`; with
    `download` in `args`, as an attachment named after `name`."""
    options = QROptions.from_args(args)
    if fmt == "svg":
        response = Response(render_svg(data, options), mimetype="image/svg+xml")
    else:
        response = Response(render_png(data, options), mimetype="image/png")
    if args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="{name}-qr.{fmt}"'
    return response


def _build_matrix(data: str, options: QROptions) -> list[list[bool]]:
    """Rows of modules, quiet zone included; True is dark."""
    code = qrcode.QRCode(
        error_correction=_ECC_LEVELS[options.ecc], border=options.margin, box_size=1
    )
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def _dark_runs(matrix: list[list[bool]]) -> Iterator[tuple[int, int, int]]:
    """(x, y, length) of each horizontal run of dark modules, row by row."""
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            yield start, y, x - start


def _parse_int(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name, "").strip()
    if not raw:
        return default
    if not _INTEGER.fullmatch(raw):
        raise InvalidParameterError(name, f"must be a whole number, got {_shown(raw)}")
    digits = raw.lstrip("+-").lstrip("0") or "0"
    negative = raw.startswith("-")
    # Far out of range either way; int() would also refuse past Python's digit limit.
    if len(digits) > 9:
        return low if negative else high
    value = -int(digits) if negative else int(digits)
    return min(high, max(low, value))


def _parse_colour(
    args: Mapping[str, str], name: str, default: str, *, allow_transparent: bool
) -> str:
    raw = args.get(name, "").strip()
    if not raw:
        return default
    if allow_transparent and raw.lower() == TRANSPARENT:
        return TRANSPARENT
    match = _COLOUR.fullmatch(raw)
    if match is None:
        accepted = "a hex colour like #1a237e or #fff"
        if allow_transparent:
            accepted += ", or 'transparent'"
        raise InvalidParameterError(name, f"must be {accepted}, got {_shown(raw)}")
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return f"#{digits}"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour, 0 for black to 1 for white."""
    linear = []
    for channel in _rgb(colour):
        c = channel / 255
        linear.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = linear
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted(
        (_relative_luminance(first), _relative_luminance(second)), reverse=True
    )
    return (lighter + 0.05) / (darker + 0.05)


def _shown(raw: str) -> str:
    """The value quoted for an error message, cropped so a huge parameter cannot flood it."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")
