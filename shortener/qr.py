"""QR parameters parsed and clamped from a query string (`QRQuery`), rendering of a code to SVG or
PNG (with an optional caption under it and an optional logo in its centre), and the image response
the API and the pages both send."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated, Any
from xml.sax.saxutils import escape

import qrcode
import zxingcpp
from annotated_types import GroupedMetadata
from flask import Response
from PIL import Image, ImageDraw, ImageFont
from pydantic import BeforeValidator, Field, WithJsonSchema
from qrcode import constants

from shortener import schemas
from shortener.errors import DomainError, InvalidParameterError
from shortener.print_fonts import fit, font_path
from shortener.print_logo import Logo, rasterise_svg

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
CAPTION_MAX = 80
# The logo's plate covers this percentage of the code's width (quiet zone excluded): 30 % hides
# about 9 % of the modules, and error correction H restores up to 30 % of the codewords. Past
# about 40 % a code stops reading, which the decoder's check then says.
LOGO_SIZE_DEFAULT = 30
LOGO_SIZE_MIN = 10
LOGO_SIZE_MAX = 50
LOGO_ECC = "H"
# The caption's letters are this share of the code's side, and shrink to fit down to a third.
CAPTION_SCALE = 0.075

_ECC_LEVELS = {
    "L": constants.ERROR_CORRECT_L,
    "M": constants.ERROR_CORRECT_M,
    "Q": constants.ERROR_CORRECT_Q,
    "H": constants.ERROR_CORRECT_H,
}
# ASCII digits only: int() would also take "1_000" and non-Latin digits.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_COLOUR_PATTERN = "#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})"
_COLOUR = re.compile(_COLOUR_PATTERN)
_NORMAL_COLOUR = re.compile(r"#[0-9a-f]{6}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SVG_NS = "http://www.w3.org/2000/svg"
_CAPTION_FONTS = "Bitstream Vera Sans, DejaVu Sans, Verdana, Arial, sans-serif"


class UnreadableCodeError(DomainError):
    """The code as drawn did not read back as its URL, so it is not handed out."""

    code = "unreadable_code"
    status = 422


@dataclass(frozen=True, slots=True)
class _Clamped(GroupedMetadata):
    """A whole number brought into `low`..`high`: a size past the largest draws the largest."""

    low: int
    high: int

    def __iter__(self) -> Iterator[Any]:
        yield BeforeValidator(partial(_clamp, low=self.low, high=self.high))
        yield WithJsonSchema({"type": "integer"})


def _clamp(value: Any, *, low: int, high: int) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return min(high, max(low, value))
    if not isinstance(value, str):
        return value  # the integer schema says what is wrong with it
    raw = value.strip()
    if not _INTEGER.fullmatch(raw):
        raise ValueError(f"must be a whole number, got {_shown(raw)}")
    digits = raw.lstrip("+-").lstrip("0") or "0"
    negative = raw.startswith("-")
    # Far out of range either way; int() would also refuse past Python's digit limit.
    if len(digits) > 9:
        return low if negative else high
    return min(high, max(low, -int(digits) if negative else int(digits)))


def _ecc(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    ecc = value.strip().upper()
    if ecc not in _ECC_LEVELS:
        raise ValueError(
            f"must be one of L, M, Q or H (error correction level), got {_shown(value.strip())}"
        )
    return ecc


def _colour(value: Any, *, allow_transparent: bool) -> Any:
    """A colour as lowercase #rrggbb (or `transparent`), from #rgb or #rrggbb in any case."""
    if not isinstance(value, str):
        return value
    raw = value.strip()
    if allow_transparent and raw.lower() == TRANSPARENT:
        return TRANSPARENT
    match = _COLOUR.fullmatch(raw)
    if match is None:
        accepted = "a hex colour like #1a237e or #fff"
        if allow_transparent:
            accepted += ", or 'transparent'"
        raise ValueError(f"must be {accepted}, got {_shown(raw)}")
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return f"#{digits}"


def _caption_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    caption = value.strip()
    if len(caption) > CAPTION_MAX:
        raise ValueError(f"must be at most {CAPTION_MAX} characters")
    if _CONTROL.search(caption):
        raise ValueError("must be one line, without control characters")
    return caption


_HEX = {"type": "string", "pattern": f"^{_COLOUR_PATTERN}$"}
Ecc = Annotated[
    str, BeforeValidator(_ecc), WithJsonSchema({"type": "string", "pattern": "^[LMQHlmqh]$"})
]
Foreground = Annotated[
    str, BeforeValidator(partial(_colour, allow_transparent=False)), WithJsonSchema(_HEX)
]
Background = Annotated[
    str,
    BeforeValidator(partial(_colour, allow_transparent=True)),
    WithJsonSchema({"anyOf": [_HEX, {"const": TRANSPARENT}]}),
]
Caption = Annotated[
    str,
    BeforeValidator(_caption_text),
    WithJsonSchema({"type": "string", "maxLength": CAPTION_MAX}),
]


class QRQuery(schemas.Query):
    """How to draw a code, as a query string (or a form) says it."""

    size: Annotated[int, _Clamped(SIZE_MIN, SIZE_MAX)] = Field(
        SIZE_DEFAULT, description=f"pixels, margin included; brought into {SIZE_MIN}..{SIZE_MAX}"
    )
    margin: Annotated[int, _Clamped(MARGIN_MIN, MARGIN_MAX)] = Field(
        MARGIN_DEFAULT, description=f"the quiet zone, in modules; brought into "
        f"{MARGIN_MIN}..{MARGIN_MAX}"
    )
    ecc: Ecc = Field(ECC_DEFAULT, description="error correction level, L, M, Q or H (any case)")
    fg: Foreground = Field(FG_DEFAULT, description="the modules' colour, #rrggbb or #rgb")
    bg: Background = Field(
        BG_DEFAULT, description="the background, #rrggbb, #rgb or transparent (any case)"
    )
    caption: Caption = Field("", description="a line written under the code")
    logo_size: Annotated[int, _Clamped(LOGO_SIZE_MIN, LOGO_SIZE_MAX)] = Field(
        LOGO_SIZE_DEFAULT, description=f"with a logo, the percentage of the code's width it "
        f"covers; brought into {LOGO_SIZE_MIN}..{LOGO_SIZE_MAX}"
    )


class CodeQuery(QRQuery):
    """A code as the API draws it: the options, and whether it is offered as a file."""

    download: bool = Field(False, description="as an attachment named after the slug")


@dataclass(frozen=True, slots=True)
class QROptions:
    """How to draw a code: `size` in pixels including the margin, `margin` in modules."""

    size: int = SIZE_DEFAULT
    margin: int = MARGIN_DEFAULT
    ecc: str = ECC_DEFAULT
    fg: str = FG_DEFAULT
    bg: str = BG_DEFAULT
    caption: str = ""
    logo_size: int = LOGO_SIZE_DEFAULT  # percent of the code's width, when there is a logo

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
        if len(self.caption) > CAPTION_MAX or _CONTROL.search(self.caption):
            raise ValueError(f"caption must be at most {CAPTION_MAX} characters on one line")
        if not LOGO_SIZE_MIN <= self.logo_size <= LOGO_SIZE_MAX:
            raise ValueError(
                f"logo_size must be within {LOGO_SIZE_MIN}..{LOGO_SIZE_MAX}, got {self.logo_size}"
            )

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QROptions:
        """The options of a query string or a form, its other fields left aside (a page's
        form holds more): numbers are clamped, anything malformed or unscannable raises
        InvalidParameterError naming the offending parameter. A blank value counts as absent,
        so an empty field of a GET form means the default."""
        known = {name: value for name, value in args.items() if name in QRQuery.model_fields}
        return cls.of(schemas.validate_query(QRQuery, known))

    @classmethod
    def of(cls, query: QRQuery) -> QROptions:
        """The options a validated query gives, once its colours are known to scan."""
        fg, bg = query.fg, query.bg
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
        return cls(
            size=query.size, margin=query.margin, ecc=query.ecc, fg=fg, bg=bg,
            caption=query.caption, logo_size=query.logo_size,
        )


@dataclass(frozen=True, slots=True)
class _Layout:
    """A code's geometry in modules: its matrix, and the square cleared for the logo if any."""

    matrix: list[list[bool]]
    plate: tuple[int, int] | None  # (first module, side) of the square cleared for the logo

    @property
    def modules(self) -> int:
        return len(self.matrix)


def _layout(data: str, options: QROptions, logo: Logo | None) -> _Layout:
    matrix = code_matrix(data, options)
    if logo is None:
        return _Layout(matrix, None)
    modules = len(matrix)
    inner = modules - 2 * options.margin
    side = max(3, round(inner * options.logo_size / 100))
    side += (inner - side) % 2  # centred on the grid of modules
    return _Layout(matrix, ((modules - side) // 2, side))


def _runs(layout: _Layout) -> Iterator[tuple[int, int, int]]:
    """The dark runs, cut where they cross the logo's plate."""
    if layout.plate is None:
        yield from dark_runs(layout.matrix)
        return
    first, side = layout.plate
    last = first + side
    for x, y, length in dark_runs(layout.matrix):
        if not first <= y < last or x + length <= first or x >= last:
            yield x, y, length
            continue
        if x < first:
            yield x, y, first - x
        if x + length > last:
            yield last, y, x + length - last


def _with_logo(options: QROptions, logo: Logo | None) -> QROptions:
    return replace(options, ecc=LOGO_ECC) if logo is not None else options


def render_svg(data: str, options: QROptions, logo: Logo | None = None) -> bytes:
    """A standalone vector SVG, `options.size` px wide and square but for the caption's band
    below; the margin is inside that size. With a logo, error correction is H."""
    options = _with_logo(options, logo)
    layout = _layout(data, options, logo)
    modules = layout.modules
    unit = modules / options.size  # one pixel of `size`, in modules
    caption, font_px, band_px = _caption(options, options.size)
    height = options.size + band_px
    path = "".join(f"M{x} {y}h{length}v1h-{length}z" for x, y, length in _runs(layout))
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="{_SVG_NS}" width="{options.size}" height="{height}" '
        f'viewBox="0 0 {modules} {_num(height * unit)}" shape-rendering="crispEdges">',
    ]
    if options.bg != TRANSPARENT:
        lines.append(
            f'<rect width="{modules}" height="{_num(height * unit)}" fill="{options.bg}"/>'
        )
    lines.append(f'<path fill="{options.fg}" d="{path}"/>')
    if logo is not None and layout.plate is not None:
        x, y, width, height_m = _logo_box(layout.plate, logo)
        lines.append(
            f'<image x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" height="{_num(height_m)}" '
            f'preserveAspectRatio="xMidYMid meet" href="{logo.data_uri()}"/>'
        )
    if caption:
        baseline = (options.size + band_px * 0.62) * unit
        lines.append(
            f'<text x="{_num(modules / 2)}" y="{_num(baseline)}" text-anchor="middle" '
            f'font-family="{_CAPTION_FONTS}" font-size="{_num(font_px * unit)}" '
            f'fill="{options.fg}">{escape(caption)}</text>'
        )
    lines.append("</svg>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_png(data: str, options: QROptions, logo: Logo | None = None) -> bytes:
    """A PNG `options.size` px wide with the code centred on bg, unless it is denser; square but
    for the caption's band below. With a logo, error correction is H.

    Every module is the same whole number of pixels (size // modules including the margin), so the
    remainder becomes extra background around the margin. A code with more modules than `size`
    pixels is drawn at one pixel per module instead, the image then being that many pixels wide.
    A transparent bg gives an RGBA image whose light modules are fully transparent white.
    """
    options = _with_logo(options, logo)
    layout = _layout(data, options, logo)
    modules = layout.modules
    box = max(1, options.size // modules)
    side = max(options.size, modules * box)
    offset = (side - modules * box) // 2
    caption, font_px, band_px = _caption(options, side)
    background: tuple[int, ...]
    foreground: tuple[int, ...]
    if options.bg == TRANSPARENT:
        mode, background, foreground = "RGBA", (255, 255, 255, 0), (*_rgb(options.fg), 255)
    else:
        mode, background, foreground = "RGB", _rgb(options.bg), _rgb(options.fg)
    image = Image.new(mode, (side, side + band_px), background)
    draw = ImageDraw.Draw(image)
    for x, y, length in _runs(layout):
        left, top = offset + x * box, offset + y * box
        draw.rectangle((left, top, left + length * box - 1, top + box - 1), fill=foreground)
    if logo is not None and layout.plate is not None:
        left_m, top_m, width_m, height_m = _logo_box(layout.plate, logo)
        picture = logo.raster(max(1, round(max(width_m, height_m) * box)))
        position = (offset + round(left_m * box), offset + round(top_m * box))
        if mode == "RGBA":
            image.alpha_composite(picture, position)
        else:
            image.paste(picture, position, picture)
    if caption:
        font = ImageFont.truetype(str(font_path()), size=max(1, round(font_px)))
        draw.text(
            (side / 2, side + band_px * 0.62), caption, font=font, fill=foreground, anchor="ms"
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def render_checked(data: str, options: QROptions, *, fmt: str, logo: Logo | None = None) -> bytes:
    """The code as `fmt` (svg or png); one with a logo is first read back by a QR decoder, and
    refused with UnreadableCodeError unless it reads exactly as `data`."""
    if fmt == "svg":
        image = render_svg(data, options, logo)
        if logo is not None:
            width = max(options.size, len(code_matrix(data, _with_logo(options, logo))) * 4)
            raster = rasterise_svg(image.decode("utf-8"), width=width)
            _check_reads_as(raster, data, options)
        return image
    image = render_png(data, options, logo)
    if logo is not None:
        _check_reads_as(image, data, options)
    return image


def _check_reads_as(png: bytes, data: str, options: QROptions) -> None:
    # A transparent code is read as it would be printed: light modules on a dark surface,
    # dark ones on a light surface.
    backdrop = (255, 255, 255, 255) if _relative_luminance(options.fg) < 0.5 else (0, 0, 0, 255)
    with Image.open(io.BytesIO(png)) as image:
        flat = Image.new("RGBA", image.size, backdrop)
        flat.alpha_composite(image.convert("RGBA"))
    found = [barcode.text for barcode in zxingcpp.read_barcodes(flat.convert("L"))]
    if data not in found:
        raise UnreadableCodeError(
            "With this logo the code does not scan: a QR decoder could not read it back as "
            f"{data}. Make the logo smaller (logo_size is {options.logo_size} %; "
            f"{LOGO_SIZE_DEFAULT} % reads well), or give fg and bg more contrast.",
            details={"field": "logo", "decoded": found},
        )


def qr_response(
    data: str, args: Mapping[str, str], *, fmt: str, name: str, logo: Logo | None = None
) -> Response:
    """The code of `data` drawn with the options of `args` (a query string or a form); with
    `download` in `args`, as an attachment."""
    options = QROptions.from_args(args)
    return code_response(
        data, options, fmt=fmt, name=name, logo=logo, download=bool(args.get("download"))
    )


def code_response(
    data: str, options: QROptions, *, fmt: str, name: str, logo: Logo | None = None,
    download: bool = False,
) -> Response:
    """The code of `data` as `fmt` (svg or png) drawn with `options` and `logo`; with
    `download`, as an attachment named after `name`."""
    image = render_checked(data, options, fmt=fmt, logo=logo)
    mimetype = "image/svg+xml" if fmt == "svg" else "image/png"
    response = Response(image, mimetype=mimetype)
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{name}-qr.{fmt}"'
    return response


# The image media types of a code, for the OpenAPI document.
IMAGE_MEDIA = {
    "image/svg+xml": {"schema": {"type": "string"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
}


def _caption(options: QROptions, side: int) -> tuple[str, float, int]:
    """The caption as drawn, its font size and the height of its band, in pixels."""
    if not options.caption:
        return "", 0.0, 0
    size = side * CAPTION_SCALE
    text, font_px = fit(options.caption, width=side * 0.92, size=size, min_size=size / 3)
    return text, font_px, round(size * 1.9)


def _logo_box(plate: tuple[int, int], logo: Logo) -> tuple[float, float, float, float]:
    """Where the logo goes in the plate, in modules: a module of plate is left around it."""
    first, side = plate
    inset = 1.0 if side >= 7 else 0.5
    room = side - 2 * inset
    scale = room / max(logo.width, logo.height)
    width, height = logo.width * scale, logo.height * scale
    return first + (side - width) / 2, first + (side - height) / 2, width, height


def _num(value: float) -> str:
    """A coordinate for SVG markup: at most three decimals, no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def code_matrix(data: str, options: QROptions) -> list[list[bool]]:
    """Rows of modules, quiet zone included; True is dark."""
    code = qrcode.QRCode(
        error_correction=_ECC_LEVELS[options.ecc], border=options.margin, box_size=1
    )
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def dark_runs(matrix: list[list[bool]]) -> Iterator[tuple[int, int, int]]:
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
