"""How reports name a touchpoint or a stage in their rows."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener.models import Touchpoint


@dataclass(frozen=True, slots=True)
class TouchpointRef:
    key: str
    name: str
    channel: str


@dataclass(frozen=True, slots=True)
class StageRef:
    key: str
    name: str
    position: int


def touchpoint_refs(session: Session, ids: Collection[int]) -> dict[int, TouchpointRef]:
    """The references of the touchpoints `ids`, by id (archived ones too)."""
    if not ids:
        return {}
    found = session.execute(
        select(Touchpoint.id, Touchpoint.key, Touchpoint.name, Touchpoint.channel)
        .where(Touchpoint.id.in_(ids))
    )
    return {tp: TouchpointRef(key, name, channel) for tp, key, name, channel in found}
