"""Typed reads of JSON request fields, each failure naming its field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from shortener.errors import BadRequestError, InvalidFieldError

MISSING: Any = object()


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
    value = value.strip() if name != "url" else value
    if not value:
        raise InvalidFieldError(name, "must not be blank")
    if len(value) > max_length:
        raise InvalidFieldError(name, f"must be at most {max_length} characters")
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
    except ValueError:
        raise InvalidFieldError(name, f"must be an ISO 8601 time, not {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def reject_unknown(data: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidFieldError(unknown[0], f"is not a known field (known: {', '.join(sorted(known))})")


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
