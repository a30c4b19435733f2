"""Touchpoints: the places and moments where customers meet the brand."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from typing_extensions import TypedDict

from shortener import request_input, schemas, slug_history
from shortener.db import add_unique, unique_or
from shortener.errors import (
    ConflictError,
    InvalidFieldError,
    InvalidParameterError,
    NotFoundError,
    UnknownReferenceError,
)
from shortener.models import Channel, Coupon, Link, Placement, Touchpoint

COUPON = re.compile(r"[A-Z0-9_-]{2,40}")
MAX_COUPONS = 100
MAX_EXPOSURE = 2_000_000_000
_CHANNELS = ", ".join(channel.value for channel in Channel)


def _coupon(code: str) -> str:
    code = code.strip().upper()
    if not COUPON.fullmatch(code):
        raise ValueError(f"{code[:50]!r} is not a code: 2 to 40 letters, digits, - and _")
    return code


# The codes printed on a touchpoint, upper-cased, each once.
Coupons = Annotated[
    list[Annotated[str, AfterValidator(_coupon)]],
    Field(max_length=MAX_COUPONS),
    AfterValidator(lambda codes: sorted(set(codes))),
]
Exposure = Annotated[int, schemas.Between(1, MAX_EXPOSURE), Field(description="people it reaches")]
ChannelName = Annotated[Channel, Field(strict=False)]


class NewTouchpoint(schemas.Body):
    key: schemas.Key
    name: schemas.Text
    channel: ChannelName
    kind: Annotated[str, schemas.Line(64)] | None = None
    exposure: Exposure | None = None
    coupons: Coupons = schemas.optional()


class TouchpointChange(schemas.Body):
    """Only the fields given change; `kind` and `exposure` may be cleared with null."""

    key: schemas.Key = schemas.optional()
    name: schemas.Text = schemas.optional()
    channel: ChannelName = schemas.optional()
    kind: Annotated[str, schemas.Line(64)] | None = None
    exposure: Exposure | None = None
    coupons: Coupons = schemas.optional()
    archived: bool = schemas.optional()


@dataclass(frozen=True, slots=True)
class TouchpointInput:
    """Fields of a create (all required but kind/exposure) or an update (only those given)."""

    values: dict[str, Any]

    @classmethod
    def from_json(cls, data: Any, *, partial: bool = False) -> TouchpointInput:
        model: type[NewTouchpoint | TouchpointChange] = (
            TouchpointChange if partial else NewTouchpoint
        )
        return cls.of(schemas.validate_body(model, data))

    @classmethod
    def of(cls, body: NewTouchpoint | TouchpointChange) -> TouchpointInput:
        values = body.given()
        if "channel" in values:
            values["channel"] = Channel(values["channel"]).value
        return cls(values)

    @classmethod
    def from_form(cls, form: Mapping[str, str], *, partial: bool) -> TouchpointInput:
        data: dict[str, Any] = {name: form.get(name, "") for name in ("key", "name", "channel")}
        request_input.form_optional(form, data, "kind", partial=partial)
        # Exposure is set once, on a create; later it is the placements' (see placements.py).
        exposure = form.get("exposure", "").strip()
        if exposure and not partial:
            data["exposure"] = request_input.form_number(exposure, "exposure")
        return cls.from_json(data, partial=partial)


def _set_coupons(session: Session, touchpoint: Touchpoint, codes: list[str]) -> None:
    """Replace the touchpoint's codes; a code another touchpoint has is a 409."""
    taken = session.execute(
        select(Coupon.code, Touchpoint.key)
        .join(Touchpoint, Touchpoint.id == Coupon.touchpoint_id)
        .where(Coupon.code.in_(codes), Coupon.touchpoint_id != touchpoint.id)
    ).first()
    if taken is not None:
        raise coupon_taken(taken[0], taken[1])
    kept = {coupon.code: coupon for coupon in touchpoint.coupons}
    touchpoint.coupons = [kept.get(code) or Coupon(code=code) for code in codes]
    session.flush()


def find_coupon(session: Session, code: str) -> Coupon | None:
    return session.scalars(
        select(Coupon).where(Coupon.code == code.strip().upper()[:40])
    ).one_or_none()


def list_touchpoints(
    session: Session, *, channel: str | None = None, include_archived: bool = False
) -> Sequence[Touchpoint]:
    query = (
        select(Touchpoint)
        .options(selectinload(Touchpoint.placements), selectinload(Touchpoint.coupons))
        .order_by(Touchpoint.key)
    )
    if channel is not None:
        if channel not in set(Channel):
            raise InvalidParameterError("channel", f"must be one of {_CHANNELS}")
        query = query.where(Touchpoint.channel == channel)
    if not include_archived:
        query = query.where(Touchpoint.archived.is_(False))
    return session.scalars(query).all()


def get_touchpoint(session: Session, key: str) -> Touchpoint:
    touchpoint = None
    if request_input.KEY_PATTERN.fullmatch(key):
        touchpoint = session.scalars(
            select(Touchpoint).where(Touchpoint.key == key)
        ).one_or_none()
    if touchpoint is None:
        raise NotFoundError(f"No touchpoint with key '{key}'.")
    return touchpoint


def find_touchpoint(session: Session, key: str, *, field: str = "touchpoint") -> Touchpoint:
    """The touchpoint a request names, or a 422 naming the field."""
    touchpoint = session.scalars(select(Touchpoint).where(Touchpoint.key == key)).one_or_none()
    if touchpoint is None:
        raise UnknownReferenceError(field, f"no touchpoint with key '{key}'")
    if touchpoint.archived:
        raise UnknownReferenceError(field, f"touchpoint '{key}' is archived")
    return touchpoint


def create_touchpoint(session: Session, data: TouchpointInput, *, today: date) -> Touchpoint:
    """A new touchpoint; an `exposure` given becomes its first placement, dated `today`."""
    values = dict(data.values)
    exposure = values.pop("exposure", None)
    coupons = values.pop("coupons", None)
    touchpoint = Touchpoint(**values)
    add_unique(session, touchpoint, lambda: key_taken(values["key"]))
    if coupons:
        _set_coupons(session, touchpoint, coupons)
    if exposure is not None:
        session.add(Placement(touchpoint=touchpoint, count=exposure, starts_on=today))
        session.flush()
    return touchpoint


def update_touchpoint(
    session: Session, key: str, data: TouchpointInput, *, now: datetime
) -> Touchpoint:
    """Change the fields given; a key another touchpoint holds is a 409 and nothing changes."""
    touchpoint = get_touchpoint(session, key)
    values = dict(data.values)
    if "coupons" in values:
        _set_coupons(session, touchpoint, values.pop("coupons"))
    if "exposure" in values:
        raise InvalidFieldError(
            "exposure",
            "is the sum of the touchpoint's placements: add one with "
            f"POST /api/v1/touchpoints/{key}/exposures",
        )
    if "archived" in values and values["archived"] != touchpoint.archived:
        values["archived_at"] = now if values["archived"] else None
    new_key = values.get("key", key)
    with unique_or(session, lambda: key_taken(new_key)):
        for name, value in values.items():
            setattr(touchpoint, name, value)
    _links_changed(session, touchpoint)
    return touchpoint


def archive_touchpoint(session: Session, key: str, *, now: datetime) -> Touchpoint:
    """Archive a touchpoint (its links stay as they are, and its past figures too)."""
    touchpoint = get_touchpoint(session, key)
    if not touchpoint.archived:
        touchpoint.archived, touchpoint.archived_at = True, now
        session.flush()
    _links_changed(session, touchpoint)
    return touchpoint


def _links_changed(session: Session, touchpoint: Touchpoint) -> None:
    # Cached targets carry the touchpoint (its key and channel are the UTM source and medium).
    links = session.scalars(select(Link).where(Link.touchpoint_id == touchpoint.id))
    slug_history.links_changed(session, list(links))


class TouchpointOut(TypedDict):
    key: str
    name: str
    channel: str
    kind: str | None
    exposure: int | None
    archived: bool
    coupons: list[str]
    created_at: schemas.TimeText


def touchpoint_json(touchpoint: Touchpoint) -> TouchpointOut:
    return {
        "key": touchpoint.key,
        "name": touchpoint.name,
        "channel": touchpoint.channel,
        "kind": touchpoint.kind,
        "exposure": touchpoint.exposure,
        "archived": touchpoint.archived,
        "coupons": [coupon.code for coupon in touchpoint.coupons],
        "created_at": touchpoint.created_at.isoformat(),
    }


def key_taken(key: str) -> ConflictError:
    return ConflictError(f"A touchpoint with key '{key}' exists already.", details={"field": "key"})


def coupon_taken(code: str, owner: str) -> ConflictError:
    """The refusal of a coupon code that the touchpoint keyed `owner` has."""
    return ConflictError(
        f"The coupon {code} belongs to the touchpoint '{owner}'.",
        details={"field": "coupons", "coupon": code},
    )
