"""The ordered stage model of the customer journey."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from shortener import schemas
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


class NewStage(schemas.Body):
    key: schemas.Key
    name: schemas.Text = schemas.optional(description="the key, capitalized, when absent")


class StageOrder(schemas.Body):
    """`{"keys": [...]}`, or the bare list."""

    keys: list[str] = Field(description="every stage key, once each, in journey order")

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return {"keys": data} if isinstance(data, list | str) else data


@dataclass(frozen=True, slots=True)
class StageInput:
    key: str
    name: str

    @classmethod
    def from_json(cls, data: Any) -> StageInput:
        return cls.of(schemas.validate_body(NewStage, data))

    @classmethod
    def of(cls, body: NewStage) -> StageInput:
        return cls(key=body.key, name=body.name or _title(body.key))


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


class StageOut(TypedDict):
    key: str
    name: str
    position: int


def stage_json(stage: Stage) -> StageOut:
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
