"""Logos for the centre of a QR code: an uploaded PNG or SVG, checked before anything draws it."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import resvg_py
from PIL import Image, UnidentifiedImageError

from shortener.errors import DomainError

LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIDE = 4096
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SVG_NS = "http://www.w3.org/2000/svg"


class InvalidLogoError(DomainError):
    code = "invalid_logo"
    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(f"logo: {message}", details={"field": "logo"})


class LogoTooLargeError(DomainError):
    code = "logo_too_large"
    status = 413

    def __init__(self, size: int) -> None:
        super().__init__(
            f"logo: the file is {size:,} bytes; a logo may be at most {LOGO_MAX_BYTES:,} "
            "bytes (1 MiB).",
            details={"field": "logo", "size": size, "limit": LOGO_MAX_BYTES},
        )


@dataclass(frozen=True, slots=True)
class Logo:
    """An uploaded logo, checked: a PNG (re-encoded, so nothing but its pixels is kept) or an
    SVG that draws from nothing outside itself. `width` and `height` give its proportions."""

    kind: str  # png or svg
    data: bytes
    width: int
    height: int

    @classmethod
    def from_upload(cls, data: bytes) -> Logo:
        """Raises LogoTooLargeError past 1 MiB and InvalidLogoError for anything but a
        readable PNG or SVG image."""
        if len(data) > LOGO_MAX_BYTES:
            raise LogoTooLargeError(len(data))
        if not data:
            raise InvalidLogoError("the file is empty; upload a PNG or SVG image")
        if data.startswith(_PNG_MAGIC):
            return cls._from_png(data)
        if _looks_like_svg(data):
            return cls._from_svg(data)
        raise InvalidLogoError("the file is not a PNG or SVG image")

    @classmethod
    def _from_png(cls, data: bytes) -> Logo:
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                if max(image.size) > LOGO_MAX_SIDE:
                    width, height = image.size
                    raise InvalidLogoError(
                        f"the image is {width}x{height} pixels; at most "
                        f"{LOGO_MAX_SIDE}x{LOGO_MAX_SIDE}"
                    )
                image.load()
                rgba = image.convert("RGBA")
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
                Image.DecompressionBombError):
            raise InvalidLogoError("the PNG file is damaged or not a PNG image") from None
        buffer = io.BytesIO()
        rgba.save(buffer, format="PNG")
        return cls("png", buffer.getvalue(), *rgba.size)

    @classmethod
    def _from_svg(cls, data: bytes) -> Logo:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidLogoError("the SVG file is not UTF-8 text") from None
        _check_svg(text)
        try:
            probe = Image.open(io.BytesIO(rasterise_svg(text, width=256)))
        except ValueError as exc:
            raise InvalidLogoError(f"the SVG image cannot be drawn ({exc})") from None
        return cls("svg", text.encode("utf-8"), *probe.size)

    def fitted(self, box: int) -> tuple[int, int]:
        """Its size in a square of `box`, proportions kept."""
        scale = box / max(self.width, self.height)
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))

    def raster(self, box: int) -> Image.Image:
        """An RGBA image of at most `box` pixels each way."""
        width, height = self.fitted(box)
        if self.kind == "svg":
            png = rasterise_svg(self.data.decode("utf-8"), width=width)
            image = Image.open(io.BytesIO(png)).convert("RGBA")
        else:
            image = Image.open(io.BytesIO(self.data)).convert("RGBA")
        return image.resize((width, height), Image.Resampling.LANCZOS)

    def data_uri(self) -> str:
        mime = "image/svg+xml" if self.kind == "svg" else "image/png"
        return f"data:{mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in data[:65536].lower()


# Elements that run script, pull in HTML, or load what lies outside the file.
_UNSAFE_ELEMENTS = frozenset({"script", "foreignobject", "iframe", "embed", "object", "audio",
                              "video", "link", "meta"})
_SAFE_DATA = ("data:image/png;", "data:image/jpeg;", "data:image/gif;", "data:image/webp;")


def _check_svg(text: str) -> None:
    """Refuse what an SVG may hold besides a drawing: script, a DTD (entities), and references
    to files or addresses, which the rasteriser would otherwise read from this machine's disk."""
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise InvalidLogoError("the SVG file declares a DTD or entities, which are not allowed")
    if "@import" in lowered:
        raise InvalidLogoError("the SVG file imports style sheets, which is not allowed")
    try:
        # No DTD is left (refused above) and expat fetches nothing, so parsing it is safe.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise InvalidLogoError(f"the SVG file is not well-formed XML ({exc})") from None
    if root.tag != f"{{{_SVG_NS}}}svg":
        raise InvalidLogoError("the file is XML but not an SVG image")
    for element in root.iter():
        name = element.tag.rpartition("}")[2].lower() if isinstance(element.tag, str) else ""
        if name in _UNSAFE_ELEMENTS:
            raise InvalidLogoError(f"the SVG file holds a <{name}> element, which is not allowed")
        for attribute, value in element.attrib.items():
            local = attribute.rpartition("}")[2].lower()
            if local.startswith("on"):
                raise InvalidLogoError(f"the SVG file holds an {local} handler (script)")
            if local == "href" and not (
                value.startswith("#") or value.strip().lower().startswith(_SAFE_DATA)
            ):
                raise InvalidLogoError(
                    "the SVG file refers to another file or address "
                    f"({_shown(value)}); embed images as data: URIs"
                )


def rasterise_svg(text: str, *, width: int, background: str | None = None) -> bytes:
    """PNG bytes of an SVG `width` px wide, drawn by resvg."""
    # System fonts are skipped: loading them takes long, and no code depends on them.
    png: bytes = resvg_py.svg_to_bytes(
        svg_string=text, width=width, background=background, skip_system_fonts=True
    )
    return png


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")
