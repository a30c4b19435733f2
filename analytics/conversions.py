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
from typing import Any

import pycountry
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.models import Conversion
from shortener import request_input
from shortener.clicks import new_click_id
from shortener.errors import InvalidFieldError
from shortener.outcomes import ClickTokens, ConversionEvent
from shortener.touchpoints import find_coupon

FIELDS = frozenset(
    {"click_id", "coupon", "event", "value", "currency", "occurred_at", "external_id"}
)
EVENT = re.compile(r"[a-z0-9_-]{1,40}")
MAX_VALUE = Decimal(10) ** 12
MICROS = Decimal(1_000_000)
CLOCK_SKEW = timedelta(minutes=5)  # a shop's clock a little ahead of ours is not an error
# How long Redis remembers an external id; past it, SQL still does.
EXTERNAL_ID_TTL = 7 * 86_400


class OutsideWindowError(InvalidFieldError):
    code = "outside_window"


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    duplicate: bool  # the external id was seen before: `id` is the first one's


def conversion_from_json(
    session: Session, data: Any, *, tokens: ClickTokens, now: datetime, window_days: int
) -> ConversionEvent:
    """The conversion a request describes, or a 422 naming the field at fault."""
    data = request_input.json_object(data)
    request_input.reject_unknown(data, FIELDS)
    click = request_input.string(data, "click_id", max_length=80)
    coupon = request_input.string(data, "coupon", max_length=40)
    if (click in (None, request_input.MISSING)) == (coupon in (None, request_input.MISSING)):
        raise InvalidFieldError("click_id", "give either click_id (tl_click) or coupon")
    event = request_input.string(data, "event", required=True, max_length=40)
    if not EVENT.fullmatch(event):
        raise InvalidFieldError(
            "event", "must be signup, lead, sale or a name of a-z, 0-9, _ and - (1 to 40)"
        )
    value_micros, currency = _value(data)
    occurred = request_input.timestamp(data, "occurred_at")
    occurred_at = now if occurred in (None, request_input.MISSING) else occurred.astimezone(UTC)
    if occurred_at > now + CLOCK_SKEW:
        raise InvalidFieldError("occurred_at", "is in the future")
    external_id = request_input.string(data, "external_id", max_length=200)
    external_id = None if external_id is request_input.MISSING else external_id
    fields: dict[str, Any] = {}
    if click not in (None, request_input.MISSING):
        ref = tokens.verify(click)
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
    else:
        found = find_coupon(session, coupon)
        if found is None:
            raise InvalidFieldError("coupon", f"no touchpoint has the coupon {coupon!r}")
        fields = {"coupon": found.code, "touchpoint_id": found.touchpoint_id}
    return ConversionEvent(
        id=new_click_id(),
        event=event,
        occurred_at=occurred_at.timestamp(),
        value_micros=value_micros,
        currency=currency,
        external_id=external_id,
        **fields,
    )


def _value(data: dict[str, Any]) -> tuple[int | None, str | None]:
    """The value in millionths of its currency, and the currency (ISO 4217, upper-case)."""
    raw, currency = data.get("value"), data.get("currency")
    if raw is None:
        if currency is not None:
            raise InvalidFieldError("currency", "goes with a value")
        return None, None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InvalidFieldError("value", "must be a decimal number, e.g. 49.90")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise InvalidFieldError("value", f"must be a decimal number, not {raw!r}") from None
    if not value.is_finite() or value < 0 or value > MAX_VALUE:
        raise InvalidFieldError("value", "must be a number from 0 to 1,000,000,000,000")
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise InvalidFieldError("value", "has more than 6 decimal places")
    if not isinstance(currency, str) or pycountry.currencies.get(
        alpha_3=currency.strip().upper()
    ) is None or len(currency.strip()) != 3:
        raise InvalidFieldError("currency", "must be an ISO 4217 code (EUR, USD, …) with a value")
    return int(micros), currency.strip().upper()


def accept(
    session: Session, conversion: ConversionEvent, client: redis.Redis | None
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
        except redis.RedisError:
            pass  # SQL's unique external id still keeps the sale from counting twice
    return Accepted(conversion.id, duplicate=False)


def release(client: redis.Redis | None, external_id: str | None) -> None:
    """Forget an external id claimed for a conversion that was not taken after all, so that the
    shop's retry is recorded rather than called a duplicate."""
    if client is None or external_id is None:
        return
    with contextlib.suppress(redis.RedisError):
        client.delete(_external_key(external_id))


def _external_key(external_id: str) -> str:
    return "touchlink:conversion:" + hashlib.sha256(external_id.encode()).hexdigest()


def conversion_json(conversion: ConversionEvent, accepted: Accepted) -> dict[str, Any]:
    return {
        "id": accepted.id,
        "result": "duplicate" if accepted.duplicate else "accepted",
        "event": conversion.event,
        "external_id": conversion.external_id,
    }
