"""A hub's avatar: an uploaded PNG, JPEG or WebP of at most 256 KiB, checked by decoding it and
re-encoded at most AVATAR_SIDE pixels each way, so that nothing of the file but its picture
(no EXIF location, no comment) is served to the public."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from shortener.errors import DomainError

AVATAR_MAX_BYTES = 256 * 1024
AVATAR_MAX_SOURCE_SIDE = 4096  # a larger picture is refused before it is decoded
AVATAR_SIDE = 400  # shown at 96 px: 400 is sharp on any phone's screen
# Magic numbers first: Pillow is asked to decode only what claims to be one of these.
_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class InvalidAvatarError(DomainError):
    code = "invalid_avatar"
    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(f"avatar: {message}", details={"field": "avatar"})


class AvatarTooLargeError(DomainError):
    code = "avatar_too_large"
    status = 413

    def __init__(self, size: int) -> None:
        super().__init__(
            f"avatar: the file is {size:,} bytes; an avatar may be at most "
            f"{AVATAR_MAX_BYTES:,} bytes (256 KiB).",
            details={"field": "avatar", "size": size, "limit": AVATAR_MAX_BYTES},
        )


@dataclass(frozen=True, slots=True)
class Avatar:
    content_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]

    @classmethod
    def from_upload(cls, data: bytes) -> Avatar:
        if len(data) > AVATAR_MAX_BYTES:
            raise AvatarTooLargeError(len(data))
        if not data:
            raise InvalidAvatarError("the file is empty; upload a PNG, JPEG or WebP image")
        kind = _sniff(data)
        if kind is None:
            raise InvalidAvatarError("the file is not a PNG, JPEG or WebP image")
        try:
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                if max(image.size) > AVATAR_MAX_SOURCE_SIDE:
                    width, height = image.size
                    raise InvalidAvatarError(
                        f"the image is {width}x{height} pixels; at most "
                        f"{AVATAR_MAX_SOURCE_SIDE}x{AVATAR_MAX_SOURCE_SIDE}"
                    )
                image.load()
                picture = ImageOps.exif_transpose(image)  # upright, as the phone took it
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
                Image.DecompressionBombError):
            raise InvalidAvatarError(f"the {kind} file is damaged or not a {kind} image") from None
        picture.thumbnail((AVATAR_SIDE, AVATAR_SIDE), Image.Resampling.LANCZOS)
        return cls(_FORMATS[kind], _encode(picture, kind))

    @classmethod
    def from_base64(cls, text: Any) -> Avatar:
        """The avatar of a JSON body: base64, optionally as a `data:` URL."""
        if not isinstance(text, str):
            raise InvalidAvatarError("must be the image as a base64 string, or null")
        if text.startswith("data:"):
            _, comma, text = text.partition(",")
            if not comma:
                raise InvalidAvatarError("the data: URL has no comma before its data")
        if len(text) > AVATAR_MAX_BYTES * 4 // 3 + 8:
            raise AvatarTooLargeError(len(text) * 3 // 4)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidAvatarError("is not valid base64") from None
        return cls.from_upload(data)


def extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, "img")


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _encode(picture: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "JPEG":
        picture.convert("RGB").save(buffer, format="JPEG", quality=88, optimize=True)
    elif kind == "WEBP":
        picture.save(buffer, format="WEBP", quality=88)
    else:
        if picture.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            picture = picture.convert("RGBA")
        picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
