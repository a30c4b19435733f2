"""The API's input schemas: pydantic models that validate request bodies and query strings and,
through `shortener.openapi`, describe them in the OpenAPI document. One source of truth: what a
model accepts is what the document says.

Bodies are read by `request_input.parse_json` first (strict JSON: no NaN, no key twice, no NUL),
then validated in strict mode (no "5" for 5, no 1 for true). A failure becomes the API's usual
error naming the first field at fault: 422 `invalid_field` for a body, 400 `invalid_parameter`
for a query string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from annotated_types import GroupedMetadata
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails
from typing_extensions import TypedDict  # pydantic wants this one before Python 3.12

from shortener.errors import BadRequestError, InvalidFieldError, InvalidParameterError

MIN_YEAR = 1970
MAX_YEAR = 9998
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# Shown in pages, CSV exports and terminals, and refused by PostgreSQL (NUL): no control
# characters (tab and newline included) in any text field.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """A JSON request body: unknown fields refused, values of exactly their JSON types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def given(self) -> dict[str, Any]:
        """The fields the request sent (null included), by name: an update changes only those."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Query(BaseModel):
    """A query string: every value arrives as text; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _clean_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters or line breaks")
    return value


@dataclass(frozen=True, slots=True)
class Line(GroupedMetadata):
    """A one-line string, surrounding blanks removed, not blank, at most `max_length`:
    `Annotated[str, Line(64)]` (`Text` is `Line(200)`)."""

    max_length: int = 200

    def __iter__(self) -> Iterator[Any]:
        yield Field(min_length=1, max_length=self.max_length)
        yield AfterValidator(_clean_text)


@dataclass(frozen=True, slots=True)
class Between(GroupedMetadata):
    """A whole number from `low` to `high`: `Annotated[int, Between(1, 100)]`."""

    low: int
    high: int

    def __iter__(self) -> Iterator[Any]:
        low, high = self.low, self.high

        def check(value: int) -> int:
            if not low <= value <= high:
                raise ValueError(f"must be between {low} and {high}")
            return value

        yield AfterValidator(check)
        yield WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})


class OneOf(GroupedMetadata):
    """Exactly one of some strings or numbers: `Annotated[str, OneOf("nps", "csat")]`."""

    __slots__ = ("values",)

    def __init__(self, *values: Any) -> None:
        self.values = values

    def __iter__(self) -> Iterator[Any]:
        values = self.values

        def check(value: Any) -> Any:
            if value not in values:
                raise ValueError(f"must be one of {', '.join(map(str, values))}")
            return value

        yield AfterValidator(check)
        yield WithJsonSchema({"enum": list(values)})


@dataclass(frozen=True, slots=True)
class Address(GroupedMetadata):
    """A URL, left exactly as sent (the URL rules explain what is wrong with it far better):
    `Annotated[str, Address(2048)]`."""

    max_length: int

    def __iter__(self) -> Iterator[Any]:
        yield Field(min_length=1, max_length=self.max_length, description="a URL")


Text = Annotated[str, Line()]


def _as_time(value: Any) -> Any:
    """An ISO 8601 time; one without an offset is taken as UTC."""
    if not isinstance(value, str):
        return value  # the datetime schema says what is wrong with it
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        in_utc = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"must be an ISO 8601 time, not {value[:40]!r}") from None
    # Both databases and every client must be able to hold and read it back.
    if not MIN_YEAR <= in_utc.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return parsed




def _key(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if not re.fullmatch(KEY_PATTERN, value):
        raise ValueError(
            "must be lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


# A touchpoint's or a stage's key.
Key = Annotated[
    str,
    AfterValidator(_key),
    WithJsonSchema({"type": "string", "pattern": KEY_PATTERN, "maxLength": 64}),
]


Timestamp = Annotated[
    datetime,
    BeforeValidator(_as_time),
    PlainSerializer(lambda at: at.isoformat()),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _as_day(value: Any) -> Any:
    """A date written YYYY-MM-DD."""
    if not isinstance(value, str):
        return value
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"must be a date (YYYY-MM-DD), not {value[:40]!r}")
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return day


Day = Annotated[
    date,
    BeforeValidator(_as_day),
    PlainSerializer(lambda day: day.isoformat()),
    WithJsonSchema({"type": "string", "format": "date"}),
]

# What the API writes: times in ISO 8601 with their offset, days as YYYY-MM-DD.
TimeText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
DayText = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]


class ErrorDetail(TypedDict):
    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(TypedDict):
    """The shape of every error (`shortener.errors.error_body`)."""

    error: ErrorDetail


T = TypeVar("T")


class Items(TypedDict, Generic[T]):
    """A list answer: `{"items": [...]}`."""

    items: list[T]


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(**kwargs: Any) -> Any:
    """A field that may be left out, but not sent as null (its value is then None)."""
    return Field(default=None, json_schema_extra=_drop_default, **kwargs)


def validate_body(model: type[M], data: Any) -> M:
    """`data` (a parsed JSON body) as `model`, or a 422 naming the first field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = _first(exc)
        if not error["loc"] and error["type"] == "model_type":
            raise BadRequestError("The request body must be a JSON object.") from None
        name, message = explain(error, model)
        raise InvalidFieldError(name, message) from None


def validate_query(model: type[M], args: Mapping[str, str]) -> M:
    """A query string as `model`, or a 400 naming the first parameter at fault. Blank values
    count as absent."""
    values = {name: value for name, value in args.items() if value.strip()}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        name, message = explain(_first(exc), model)
        raise InvalidParameterError(name, message) from None


def _first(exc: ValidationError) -> ErrorDetails:
    """The error to report: an unknown field first (a misspelt name explains the rest)."""
    errors = exc.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def explain(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str]:
    """The field an error is about (dotted, for nested ones) and what is wrong, in our words."""
    name = ".".join(str(part) for part in error["loc"]) or "body"
    kind, context = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        if len(error["loc"]) > 1:
            return name, "is not a known field"
        known = ", ".join(sorted(f.alias or n for n, f in model.model_fields.items()))
        return name, f"is not a known field (known: {known})"
    if kind == "missing" and len(error["loc"]) == 1:
        described = next(
            (f.description for n, f in model.model_fields.items() if (f.alias or n) == name), None
        )
        return name, f"is required: {described}" if described else "is required"
    message = {
        "missing": "is required",
        "string_type": f"must be a string, not {_type_name(error['input'])}",
        "int_type": f"must be a whole number, not {_type_name(error['input'])}",
        "int_parsing": "must be a whole number",
        "float_type": f"must be a number, not {_type_name(error['input'])}",
        "bool_type": f"must be true or false, not {_type_name(error['input'])}",
        "bool_parsing": "must be true or false",
        "list_type": f"must be a list, not {_type_name(error['input'])}",
        "dict_type": f"must be an object, not {_type_name(error['input'])}",
        "model_type": f"must be an object, not {_type_name(error['input'])}",
        "string_too_short": "must not be blank",
        "string_too_long": f"must be at most {context.get('max_length')} characters",
        "string_pattern_mismatch": "is not well formed",
        "too_long": f"must hold at most {context.get('max_length')} items",
        "too_short": f"must hold at least {context.get('min_length')} items",
        "greater_than": f"must be more than {context.get('gt')}",
        "less_than": f"must be less than {context.get('lt')}",
        "greater_than_equal": f"must be at least {context.get('ge')}",
        "less_than_equal": f"must be at most {context.get('le')}",
        "literal_error": f"must be one of {context.get('expected')}",
        "enum": f"must be one of {context.get('expected')}",
        "datetime_type": "must be an ISO 8601 time",
        "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
        "date_parsing": "must be a date (YYYY-MM-DD)",
    }.get(kind)
    if message is None:  # our own validators' messages, and any other pydantic has
        message = error["msg"].removeprefix("Value error, ")
    return name, message


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), "null" if value is None else type(value).__name__)

