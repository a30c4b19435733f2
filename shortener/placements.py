"""Placements: dated counts of the people a touchpoint reached ("2,000 flyers handed out in the
week of 3 November", "5,000 emails sent on 10 November"). A touchpoint's exposure is their sum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from shortener import request_input, schemas
from shortener.errors import InvalidFieldError, NotFoundError
from shortener.models import MAX_ID, Placement, Touchpoint

MAX_COUNT = 2_000_000_000


class NewPlacement(schemas.Body):
    count: Annotated[int, schemas.Between(1, MAX_COUNT)] = Field(
        description="how many people it reached"
    )
    starts_on: schemas.Day = Field(alias="from", description="the day it began (YYYY-MM-DD)")
    ends_on: schemas.Day | None = Field(default=None, alias="to")
    note: schemas.Text | None = None


@dataclass(frozen=True, slots=True)
class PlacementInput:
    count: int
    starts_on: date
    ends_on: date | None = None
    note: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> PlacementInput:
        return cls.of(schemas.validate_body(NewPlacement, data))

    @classmethod
    def of(cls, body: NewPlacement) -> PlacementInput:
        if body.ends_on is not None and body.ends_on < body.starts_on:
            raise InvalidFieldError("to", f"must not be before from ({body.starts_on.isoformat()})")
        return cls(body.count, body.starts_on, body.ends_on, body.note)

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


PlacementOut = TypedDict("PlacementOut", {
    "id": int, "count": int, "from": schemas.DayText, "to": schemas.DayText | None,
    "note": str | None, "created_at": schemas.TimeText,
})


def placement_json(placement: Placement) -> PlacementOut:
    return {
        "id": placement.id,
        "count": placement.count,
        "from": placement.starts_on.isoformat(),
        "to": placement.ends_on.isoformat() if placement.ends_on else None,
        "note": placement.note,
        "created_at": placement.created_at.isoformat(),
    }
