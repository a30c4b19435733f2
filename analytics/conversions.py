"""Conversions as a shop posts them: checked at once (a signed click or a known coupon, an event
name, a value with its currency, a time after the click and inside the window), answered once
per `external_id`, then handed to the sink to be stored like a click, exactly once."""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.models import Conversion
from shortener import schemas
from shortener.clicks import new_click_id
from shortener.errors import InvalidFieldError
from shortener.outcomes import ClickTokens, ConversionEvent
from shortener.redis_client import ERRORS, Client
from shortener.touchpoints import find_coupon

EVENT = re.compile(r"[a-z0-9_-]{1,40}")
MAX_VALUE = Decimal(10) ** 12
MICROS = Decimal(1_000_000)
CLOCK_SKEW = timedelta(minutes=5)  # a shop's clock a little ahead of ours is not an error
# How long Redis remembers an external id; past it, SQL still does.
EXTERNAL_ID_TTL = 7 * 86_400


class OutsideWindowError(InvalidFieldError):
    code = "outside_window"


def _event(value: str) -> str:
    if not EVENT.fullmatch(value):
        raise ValueError("must be signup, lead, sale or a name of a-z, 0-9, _ and - (1 to 40)")
    return value


def _decimal(raw: Any) -> Any:
    """A value as sent (a number, or a string that keeps it exact) as a Decimal."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("must be a decimal number, e.g. 49.90")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"must be a decimal number, not {raw!r}") from None
    if not value.is_finite() or value < 0 or value > MAX_VALUE:
        raise ValueError("must be a number from 0 to 1,000,000,000,000")
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise ValueError("has more than 6 decimal places")
    return value


def _currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError("must be an ISO 4217 code (EUR, USD, …) with a value")
    return code


Money = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    WithJsonSchema({"anyOf": [
        {"type": "number", "minimum": 0, "maximum": int(MAX_VALUE)},
        {"type": "string", "description": "a decimal, kept exact: \"49.90\""},
    ]}),
]

Currency = Annotated[
    str, AfterValidator(_currency), WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{3}$"})
]


class NewConversion(schemas.Body):
    """A conversion of a click (`click_id`) or of a coupon (`coupon`): one of the two."""

    click_id: Annotated[str, schemas.Line(80)] | None = Field(
        default=None, description="the `tl_click` the link handed the shop"
    )
    coupon: Annotated[str, schemas.Line(40)] | None = Field(
        default=None, description="a touchpoint's coupon code"
    )
    event: Annotated[str, schemas.Line(40), AfterValidator(_event)] = Field(
        description="signup, lead, sale or a name of a-z, 0-9, _ and -",
        json_schema_extra={"pattern": f"^{EVENT.pattern}$"},
    )
    value: Money | None = Field(default=None, description="at most 6 decimal places")
    currency: Currency | None = Field(
        default=None, description="ISO 4217 (any letter case), with a value"
    )
    occurred_at: schemas.Timestamp | None = Field(
        default=None, description="now if null; after its click, and inside the window"
    )
    external_id: Annotated[str, schemas.Line(200)] | None = Field(
        default=None, description="the shop's id: sent again, it is a duplicate"
    )


class ConversionOut(TypedDict):
    id: str
    result: Literal["accepted", "duplicate"]
    event: str
    external_id: str | None


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    duplicate: bool  # the external id was seen before: `id` is the first one's


def conversion_from_json(
    session: Session, data: Any, *, tokens: ClickTokens, now: datetime, window_days: int
) -> ConversionEvent:
    """The conversion a request describes, or a 422 naming the field at fault."""
    body = schemas.validate_body(NewConversion, data)
    return conversion_of(session, body, tokens=tokens, now=now, window_days=window_days)


def conversion_of(
    session: Session, body: NewConversion, *, tokens: ClickTokens, now: datetime,
    window_days: int,
) -> ConversionEvent:
    """The conversion `body` describes, once its click (or coupon), value and time check out."""
    if (body.click_id is None) == (body.coupon is None):
        raise InvalidFieldError("click_id", "give either click_id (tl_click) or coupon")
    value_micros, currency = _value(body.value, body.currency)
    occurred_at = now if body.occurred_at is None else body.occurred_at.astimezone(UTC)
    if occurred_at > now + CLOCK_SKEW:
        raise InvalidFieldError("occurred_at", "is in the future")
    fields: dict[str, Any] = {}
    if body.click_id is not None:
        ref = tokens.verify(body.click_id)
        if ref is None:
            raise InvalidFieldError("click_id", "is not a click of this Touchlink (tl_click)")
        clicked_at = datetime.fromtimestamp(ref.clicked_at, UTC)
        if occurred_at < clicked_at:
            raise InvalidFieldError("occurred_at", "is before its click")
        if occurred_at - clicked_at > timedelta(days=window_days):
            raise OutsideWindowError(
                "click_id", f"the click is more than {window_days} days older than the conversion"
            )
        fields = {"click_id": ref.click_id, "link_id": ref.link_id, "clicked_at": ref.clicked_at}
    elif body.coupon is not None:
        found = find_coupon(session, body.coupon)
        if found is None:
            raise InvalidFieldError("coupon", f"no touchpoint has the coupon {body.coupon!r}")
        fields = {"coupon": found.code, "touchpoint_id": found.touchpoint_id}
    return ConversionEvent(
        id=new_click_id(),
        event=body.event,
        occurred_at=occurred_at.timestamp(),
        value_micros=value_micros,
        currency=currency,
        external_id=body.external_id,
        **fields,
    )


def _value(value: Decimal | None, currency: str | None) -> tuple[int | None, str | None]:
    """The value in millionths of its currency, and the currency: one goes with the other."""
    if value is None:
        if currency is not None:
            raise InvalidFieldError("currency", "goes with a value")
        return None, None
    if currency is None:
        raise InvalidFieldError("currency", "must be an ISO 4217 code (EUR, USD, …) with a value")
    return int(value * MICROS), currency


def accept(
    session: Session, conversion: ConversionEvent, client: Client | None
) -> Accepted:
    """Whether the conversion is new (to be recorded) or a retry of one seen before, by its
    external id: in SQL, or (while it travels through the stream) in Redis."""
    external = conversion.external_id
    if external is None:
        return Accepted(conversion.id, duplicate=False)
    stored = session.scalar(select(Conversion.id).where(Conversion.external_id == external))
    if stored is not None:
        return Accepted(stored, duplicate=True)
    if client is not None:
        key = _external_key(external)
        try:
            if not client.set(key, conversion.id, nx=True, ex=EXTERNAL_ID_TTL):
                first = client.get(key)
                if first is not None:
                    text = first.decode() if isinstance(first, bytes) else str(first)
                    return Accepted(text, duplicate=True)
        except ERRORS:
            pass  # SQL's unique external id still keeps the sale from counting twice
    return Accepted(conversion.id, duplicate=False)


def release(client: Client | None, external_id: str | None) -> None:
    """Forget an external id claimed for a conversion that was not taken after all, so that the
    shop's retry is recorded rather than called a duplicate."""
    if client is None or external_id is None:
        return
    with contextlib.suppress(*ERRORS):
        client.delete(_external_key(external_id))


def _external_key(external_id: str) -> str:
    return "touchlink:conversion:" + hashlib.sha256(external_id.encode()).hexdigest()


def conversion_json(conversion: ConversionEvent, accepted: Accepted) -> ConversionOut:
    return {
        "id": accepted.id,
        "result": "duplicate" if accepted.duplicate else "accepted",
        "event": conversion.event,
        "external_id": conversion.external_id,
    }
