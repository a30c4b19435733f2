"""Reads of request input beside the schemas (`shortener.schemas`): a JSON body, strictly, before
its schema; the pages' own query filters and form fields. Each failure names its input."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from shortener.errors import BadRequestError, InvalidFieldError, InvalidParameterError
from shortener.input_guard import check_strings

# Names, campaigns and keys are shown in pages, CSV exports and terminals, and PostgreSQL refuses
# NUL outright: no control characters (tab and newline included) in any text field.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse_json(data: bytes) -> Any:
    """A request body as JSON, strictly: no NaN or Infinity, no key twice in an object (which
    of the two would count is anyone's guess), no NUL or lone surrogate in any string; a 400
    naming the problem otherwise."""
    try:
        parsed = json.loads(
            data, parse_constant=_refuse_constant, object_pairs_hook=_object_once_per_key
        )
    except RecursionError:
        raise BadRequestError("The request body is JSON nested too deeply.") from None
    except _DuplicateKeyError as exc:
        raise BadRequestError(
            f"The request body names '{exc.key}' twice in one object.",
            details={"field": exc.key},
        ) from None
    except ValueError as exc:  # UnicodeDecodeError and the integer digit limit included
        raise BadRequestError(f"The request body is not valid JSON ({exc}).") from None
    check_strings(parsed)
    return parsed


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key[:100]


def _object_once_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return found


def text_param(args: Mapping[str, str], name: str, *, max_length: int = 200) -> str | None:
    """A query-string filter value, None when absent or blank; a 400 naming it when malformed."""
    value = args.get(name, "").strip()
    if not value:
        return None
    if len(value) > max_length:
        raise InvalidParameterError(name, f"must be at most {max_length} characters")
    if _CONTROL.search(value):
        raise InvalidParameterError(name, "must not contain control characters")
    return value


KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


# --- HTML forms: text fields, blank meaning absent (on a create) or cleared (on an edit) ---------


def form_optional(
    form: Mapping[str, str], data: dict[str, Any], name: str, *, partial: bool
) -> None:
    """Copy a text field that may be left blank: absent on a create, cleared on an edit."""
    value = form.get(name, "").strip()
    if value:
        data[name] = value
    elif partial:
        data[name] = None


def form_number(raw: str, name: str) -> int:
    """A whole number typed into a form, thousands separators allowed (`5,000`)."""
    digits = raw.strip().replace(",", "").replace(" ", "")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        raise InvalidFieldError(name, "must be a whole number, like 5000")
    return int(digits)
