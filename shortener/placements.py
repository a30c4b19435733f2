"""Placements: dated counts of the people a touchpoint reached ("2,000 flyers handed out in the
week of 3 November", "5,000 emails sent on 10 November"). A touchpoint's exposure is their sum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener import request_input
from shortener.errors import InvalidFieldError, NotFoundError
from shortener.models import MAX_ID, Placement, Touchpoint

FIELDS = frozenset({"count", "from", "to", "note"})
MAX_COUNT = 2_000_000_000


@dataclass(frozen=True, slots=True)
class PlacementInput:
    count: int
    starts_on: date
    ends_on: date | None = None
    note: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> PlacementInput:
        data = request_input.json_object(data)
        request_input.reject_unknown(data, FIELDS)
        count = request_input.integer(data, "count", low=1, high=MAX_COUNT)
        if count in (request_input.MISSING, None):
            raise InvalidFieldError("count", "is required: how many people it reached")
        starts_on = _date(data, "from", required=True)
        ends_on = _date(data, "to")
        if starts_on is None:
            raise InvalidFieldError("from", "is required: the day it began (YYYY-MM-DD)")
        if ends_on is not None and ends_on < starts_on:
            raise InvalidFieldError("to", f"must not be before from ({starts_on.isoformat()})")
        note = request_input.string(data, "note")
        return cls(count, starts_on, ends_on, note if isinstance(note, str) else None)

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> PlacementInput:
        """The placement form of the touchpoint page: a count typed with separators allowed
        (`2,000`), dates from date fields, blank optional fields left out."""
        data: dict[str, Any] = {}
        count = form.get("count", "").strip()
        if count:
            data["count"] = request_input.form_number(count, "count")
        for name in ("from", "to", "note"):
            value = form.get(name, "").strip()
            if value:
                data[name] = value
        return cls.from_json(data)


def _date(data: dict[str, Any], name: str, *, required: bool = False) -> date | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidFieldError(name, "is required: a date (YYYY-MM-DD)")
        return None
    if not isinstance(value, str) or len(value) != 10:
        raise InvalidFieldError(name, "must be a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidFieldError(name, f"must be a date (YYYY-MM-DD), not {value!r}") from None
    if not request_input.MIN_YEAR <= day.year <= request_input.MAX_YEAR:
        raise InvalidFieldError(name, "is out of range")
    return day


def add_placement(session: Session, touchpoint: Touchpoint, data: PlacementInput) -> Placement:
    placement = Placement(
        touchpoint=touchpoint,
        count=data.count,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        note=data.note,
    )
    session.add(placement)
    session.flush()
    return placement


def list_placements(session: Session, touchpoint: Touchpoint) -> Sequence[Placement]:
    return session.scalars(
        select(Placement)
        .where(Placement.touchpoint_id == touchpoint.id)
        .order_by(Placement.starts_on, Placement.id)
    ).all()


def remove_placement(session: Session, touchpoint: Touchpoint, placement_id: int) -> Placement:
    placement = session.get(Placement, placement_id) if 0 < placement_id <= MAX_ID else None
    if placement is None or placement.touchpoint_id != touchpoint.id:
        raise NotFoundError(f"No placement {placement_id} of touchpoint '{touchpoint.key}'.")
    session.delete(placement)
    session.flush()
    return placement


def placement_json(placement: Placement) -> dict[str, Any]:
    return {
        "id": placement.id,
        "count": placement.count,
        "from": placement.starts_on.isoformat(),
        "to": placement.ends_on.isoformat() if placement.ends_on else None,
        "note": placement.note,
        "created_at": placement.created_at.isoformat(),
    }
