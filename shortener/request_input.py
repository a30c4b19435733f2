"""Typed reads of request input (JSON bodies, query strings, forms), each failure naming it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

from shortener.errors import BadRequestError, InvalidFieldError, InvalidParameterError
from shortener.input_guard import check_strings

MISSING: Any = object()
MIN_YEAR = 1970
MAX_YEAR = 9998

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


def json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequestError("The request body must be a JSON object.")
    return data


def string(
    data: dict[str, Any], name: str, *, required: bool = False, max_length: int = 200
) -> Any:
    """A non-blank string, None when explicitly null, or MISSING when absent and optional."""
    if name not in data:
        if required:
            raise InvalidFieldError(name, "is required")
        return MISSING
    value = data[name]
    if value is None:
        if required:
            raise InvalidFieldError(name, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidFieldError(name, f"must be a string, not {_type_name(value)}")
    if name == "url":
        # Left exactly as sent: the URL rules explain what is wrong with it far better.
        if not value:
            raise InvalidFieldError(name, "must not be blank")
        if len(value) > max_length:
            raise InvalidFieldError(name, f"must be at most {max_length} characters")
        return value
    value = value.strip()
    if not value:
        raise InvalidFieldError(name, "must not be blank")
    if len(value) > max_length:
        raise InvalidFieldError(name, f"must be at most {max_length} characters")
    if _CONTROL.search(value):
        raise InvalidFieldError(name, "must not contain control characters or line breaks")
    return value


def integer(data: dict[str, Any], name: str, *, low: int, high: int) -> Any:
    if name not in data:
        return MISSING
    value = data[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFieldError(name, f"must be a whole number, not {_type_name(value)}")
    if not low <= value <= high:
        raise InvalidFieldError(name, f"must be between {low} and {high}")
    return value


def boolean(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        return MISSING
    value = data[name]
    if not isinstance(value, bool):
        raise InvalidFieldError(name, f"must be true or false, not {_type_name(value)}")
    return value


def timestamp(data: dict[str, Any], name: str) -> Any:
    """An ISO 8601 time; one without an offset is taken as UTC."""
    if name not in data:
        return MISSING
    value = data[name]
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFieldError(name, f"must be an ISO 8601 time, not {_type_name(value)}")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        in_utc = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidFieldError(name, f"must be an ISO 8601 time, not {value!r}") from None
    # Both databases and every client must be able to hold and read it back.
    if not MIN_YEAR <= in_utc.year <= MAX_YEAR:
        raise InvalidFieldError(name, f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return parsed


def reject_unknown(data: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        known_list = ", ".join(sorted(known))
        raise InvalidFieldError(unknown[0], f"is not a known field (known: {known_list})")


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


def limit_param(
    args: Mapping[str, str], name: str = "limit", *, default: int, maximum: int
) -> int:
    """How many rows to return: a whole number from 1 to `maximum`; `default` when absent."""
    raw = args.get(name, "").strip()
    if not raw:
        return default
    # Digits only (int() also takes "1_000" and non-Latin digits), and never a huge number.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not 1 <= int(raw) <= maximum:
        raise InvalidParameterError(name, f"must be a whole number from 1 to {maximum}")
    return int(raw)


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), "null" if value is None else type(value).__name__)


KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def key(data: dict[str, Any], name: str = "key", *, required: bool = True) -> Any:
    """A touchpoint or stage key: lowercase letters, digits, '-' and '_', at most 64."""
    value = string(data, name, required=required, max_length=64)
    if isinstance(value, str) and not KEY_PATTERN.fullmatch(value):
        raise InvalidFieldError(
            name, "must be lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


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
