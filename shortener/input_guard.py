"""The one input layer for text no field may hold: NUL (PostgreSQL refuses it, and it cuts strings
short in C libraries) and lone UTF-16 surrogates (no encoding can write them). Every query
parameter and form field is checked as the request reads it (`CheckedRequest`), and every string
of a JSON body as `request_input.parse_json` reads it, so no view, report or form can forget.
"""

from __future__ import annotations

import re
from typing import IO, Any, cast

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

from shortener.errors import BadRequestError

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class BadTextError(BadRequestError):
    code = "invalid_text"

    def __init__(self, where: str, name: str) -> None:
        super().__init__(
            f"{name}: holds a NUL character or a lone UTF-16 surrogate, which no text may hold.",
            details={where: name},
        )


def has_bad_text(text: str) -> bool:
    return _BAD_TEXT.search(text) is not None


def check_strings(value: Any, name: str = "body") -> None:
    """Refuse a JSON document with bad text in any of its strings or keys (`name`: where it is)."""
    pending: list[tuple[Any, str]] = [(value, name)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            if has_bad_text(item):
                raise BadTextError("field", where)
        elif isinstance(item, dict):
            for key, inner in item.items():
                if has_bad_text(key):
                    raise BadTextError("field", f"{where} key")
                pending.append((inner, key if where == "body" else f"{where}.{key}"))
        elif isinstance(item, list):
            pending.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))


class CheckedMultiDict(ImmutableMultiDict[str, str]):
    """Query parameters and form fields, refused at once when one holds bad text."""

    def __init__(self, mapping: Any = None) -> None:
        super().__init__(mapping)
        for name, value in self.items(multi=True):
            if has_bad_text(name) or (isinstance(value, str) and has_bad_text(value)):
                raise BadTextError("parameter", _printable(name))


def _printable(name: str) -> str:
    return _BAD_TEXT.sub("\ufffd", name)[:100]


class _WholeOrRefused(LimitedStream):
    """A body of unstated length (chunked) read up to `max_content_length`: Werkzeug stops there
    and hands on what it read, so a byte more is looked for, and is a 413, not a body cut short."""

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and self._stream.read(1):
            raise RequestEntityTooLarge()
        return data


class CheckedRequest(Request):
    parameter_storage_class = CheckedMultiDict

    @cached_property
    def stream(self) -> IO[bytes]:
        stream = get_input_stream(self.environ, max_content_length=self.max_content_length)
        limit = self.max_content_length
        if "wsgi.input_terminated" in self.environ and limit is not None:
            return cast(IO[bytes], _WholeOrRefused(self.environ["wsgi.input"], limit, is_max=True))
        return stream


class BoundedIntegerConverter(IntegerConverter):
    """`<int:…>` in a path: more digits than any id of ours is no page (a 404), rather than the
    ValueError Python's integer digit limit raises past 4,300 digits (a 500). A 404 of this
    rule's own: were the rule passed over, another path's rule could answer (a 405)."""

    MAX_DIGITS = 18

    def to_python(self, value: str) -> int:
        if len(value) > self.MAX_DIGITS:
            raise NotFound()
        converted: int = super().to_python(value)
        return converted
