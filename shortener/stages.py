"""The ordered stage model of the customer journey."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener import request_input
from shortener.db import add_unique
from shortener.errors import ConflictError, InvalidFieldError, NotFoundError, UnknownReferenceError
from shortener.models import Stage

PRESETS: dict[str, tuple[str, ...]] = {
    "classic": ("awareness", "consideration", "decision", "post-purchase", "support"),
    "three-phase": ("before-purchase", "during-purchase", "after-purchase"),
    "nine-stage": (
        "awareness",
        "consideration",
        "interest",
        "intent",
        "purchase",
        "post-purchase",
        "retention",
        "advocacy",
        "loyalty",
    ),
}
DEFAULT_PRESET = "classic"


@dataclass(frozen=True, slots=True)
class StageInput:
    key: str
    name: str

    @classmethod
    def from_json(cls, data: Any) -> StageInput:
        data = request_input.json_object(data)
        request_input.reject_unknown(data, frozenset({"key", "name"}))
        key = request_input.key(data)
        name = request_input.string(data, "name")
        return cls(key=key, name=name if isinstance(name, str) else _title(key))


def _title(key: str) -> str:
    return key.replace("-", " ").replace("_", " ").capitalize()


def list_stages(session: Session) -> Sequence[Stage]:
    return session.scalars(select(Stage).order_by(Stage.position, Stage.id)).all()


def get_stage(session: Session, key: str) -> Stage:
    stage = session.scalars(select(Stage).where(Stage.key == key)).one_or_none()
    if stage is None:
        raise NotFoundError(f"No stage with key '{key}'.")
    return stage


def find_stage(session: Session, key: str, *, field: str = "stage") -> Stage:
    """The stage a request names, or a 422 naming the field."""
    stage = session.scalars(select(Stage).where(Stage.key == key)).one_or_none()
    if stage is None:
        raise UnknownReferenceError(field, f"no stage with key '{key}'")
    return stage


def create_stage(session: Session, data: StageInput) -> Stage:
    """Append a stage at the end of the journey."""
    last = session.scalar(select(func.max(Stage.position))) or 0
    stage = Stage(key=data.key, name=data.name, position=last + 1)
    add_unique(
        session, stage, lambda: ConflictError(f"A stage with key '{data.key}' exists already.")
    )
    return stage


def order_from_json(data: Any) -> list[str]:
    """The stage keys of a reorder request: `{"keys": [...]}` or the bare list."""
    if isinstance(data, dict):
        request_input.reject_unknown(data, frozenset({"keys"}))
        data = data.get("keys")
    if not isinstance(data, list) or not all(isinstance(key, str) for key in data):
        raise InvalidFieldError("keys", "must be a list of stage keys")
    return data


def reorder_stages(session: Session, keys: list[str]) -> Sequence[Stage]:
    """Set the journey order; `keys` must name every stage exactly once."""
    stages = {stage.key: stage for stage in list_stages(session)}
    if sorted(keys) != sorted(stages):
        raise InvalidFieldError(
            "keys", f"must name every stage exactly once: {', '.join(sorted(stages))}"
        )
    for position, key in enumerate(keys, start=1):
        stages[key].position = position
    session.flush()
    return list_stages(session)


def stage_json(stage: Stage) -> dict[str, Any]:
    return {"key": stage.key, "name": stage.name, "position": stage.position}


def apply_preset(session: Session, preset: str) -> Sequence[Stage]:
    """Create the preset's stages that are missing; existing stages are left as they are."""
    if preset not in PRESETS:
        raise InvalidFieldError("preset", f"must be one of {', '.join(PRESETS)}")
    existing = {stage.key for stage in list_stages(session)}
    for key in PRESETS[preset]:
        if key not in existing:
            create_stage(session, StageInput(key=key, name=_title(key)))
    return list_stages(session)
