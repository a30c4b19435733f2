"""Alert rules: what to watch (silent, drop, bot_spike), for one touchpoint or for all, with
parameters checked when the rule is made and stored complete, defaults filled in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from annotated_types import GroupedMetadata
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, WithJsonSchema
from pydantic.fields import FieldInfo
from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.models import AlertRule
from shortener import schemas
from shortener.errors import (
    ConflictError,
    InvalidFieldError,
    NotFoundError,
    UnknownReferenceError,
)
from shortener.models import Touchpoint


class RuleExistsError(ConflictError):
    code = "rule_exists"


@dataclass(frozen=True, slots=True)
class Number(GroupedMetadata):
    """A number above `low` (at least `low` with `low_included`) and at most `high`:
    `Annotated[float, Number(0, 1)]`."""

    low: float
    high: float
    low_included: bool = False

    def __iter__(self) -> Iterator[Any]:
        low, high, included = self.low, self.high, self.low_included

        def check(value: float) -> float:
            if (value < low if included else value <= low) or value > high:
                bound = "at least" if included else "above"
                raise ValueError(f"must be a number {bound} {low:g} and at most {high:g}")
            return value

        yield AfterValidator(check)
        low_key = "minimum" if included else "exclusiveMinimum"
        yield WithJsonSchema({"type": "number", low_key: low, "maximum": high})


Probability = Annotated[
    float, Number(0, 0.5), Field(description="how unlikely by chance the finding must be")
]


class SilentParameters(schemas.Body):
    """silent: no human click for `hours`."""

    hours: Annotated[int, schemas.Between(1, 168)] = 6
    probability: Probability = 0.01


class DropParameters(schemas.Body):
    """drop: the last 24 hours well below the same hours of the weeks before."""

    threshold: Annotated[float, Number(0, 1)] = Field(
        default=0.5, description="the last 24 hours at most this share of the expected"
    )
    probability: Probability = 0.01


class BotSpikeParameters(schemas.Body):
    """bot_spike: far more bot clicks since the hour began than usual."""

    min_clicks: Annotated[int, schemas.Between(1, 1_000_000)] = 20
    ratio: Annotated[float, Number(1, 1000, low_included=True)] = Field(
        default=3.0, description="at least this many times the expected"
    )
    probability: Probability = 0.01


RuleParameters = SilentParameters | DropParameters | BotSpikeParameters
KIND_PARAMETERS: dict[str, type[RuleParameters]] = {
    "silent": SilentParameters, "drop": DropParameters, "bot_spike": BotSpikeParameters,
}
KINDS = tuple(KIND_PARAMETERS)
# Each kind's parameters, each with its default and field, as the alerts page lists them.
PARAMETERS: dict[str, dict[str, tuple[Any, FieldInfo]]] = {
    kind: {name: (field.default, field) for name, field in model.model_fields.items()}
    for kind, model in KIND_PARAMETERS.items()
}


class NewRule(schemas.Body):
    kind: Annotated[str, schemas.OneOf(*KINDS)]
    touchpoint: schemas.Key | None = Field(default=None, description="every touchpoint if null")
    # Described as any kind's; checked once the kind is known (`kind_parameters`), so that a
    # refusal names `parameters.hours` rather than a member of the union.
    parameters: Annotated[
        dict[str, Any], BeforeValidator(lambda given: given, json_schema_input_type=RuleParameters)
    ] | None = Field(default=None, description="the kind's; the defaults for those left out")

    def kind_parameters(self) -> dict[str, Any]:
        """The kind's parameters, defaults filled in; a 422 naming the one at fault."""
        model = KIND_PARAMETERS[self.kind]
        try:
            return model.model_validate(self.parameters or {}).model_dump()
        except ValidationError as exc:
            name, message = schemas.explain(exc.errors()[0], model)
            raise InvalidFieldError(f"parameters.{name}", message) from None


@dataclass(frozen=True, slots=True)
class RuleInput:
    kind: str
    touchpoint: str | None  # a touchpoint's key; None: every touchpoint
    parameters: dict[str, Any]

    @classmethod
    def from_json(cls, data: Any) -> RuleInput:
        return cls.of(schemas.validate_body(NewRule, data))

    @classmethod
    def of(cls, body: NewRule) -> RuleInput:
        return cls(body.kind, body.touchpoint, body.kind_parameters())


def add_rule(session: Session, data: RuleInput) -> AlertRule:
    """Make a rule; the same kind, touchpoint and parameters twice is a 409."""
    touchpoint_id = None
    if data.touchpoint is not None:
        touchpoint_id = session.scalar(select(Touchpoint.id).where(
            Touchpoint.key == data.touchpoint))
        if touchpoint_id is None:
            raise UnknownReferenceError("touchpoint", f"No touchpoint {data.touchpoint!r}.")
    parameters = orjson.dumps(data.parameters, option=orjson.OPT_SORT_KEYS).decode()
    same = session.scalar(select(AlertRule.id).where(
        AlertRule.kind == data.kind, AlertRule.parameters == parameters,
        AlertRule.touchpoint_id.is_(None) if touchpoint_id is None
        else AlertRule.touchpoint_id == touchpoint_id,
    ))
    if same is not None:
        raise RuleExistsError(f"Rule {same} already watches this.", details={"rule": same})
    rule = AlertRule(kind=data.kind, touchpoint_id=touchpoint_id, parameters=parameters)
    session.add(rule)
    session.flush()
    return rule


def list_rules(session: Session) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).order_by(AlertRule.id)))


def find_rule(session: Session, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFoundError(f"No alert rule {rule_id}.")
    return rule


def parameters_of(rule: AlertRule) -> dict[str, Any]:
    stored: dict[str, Any] = orjson.loads(rule.parameters)
    return stored


class RuleOut(TypedDict):
    id: int
    kind: str
    touchpoint: str | None  # None: every touchpoint
    parameters: dict[str, float]  # every one of the kind's, defaults filled in
    created_at: schemas.TimeText


def rule_json(rule: AlertRule, touchpoint_keys: dict[int, str]) -> RuleOut:
    return {
        "id": rule.id, "kind": rule.kind,
        "touchpoint": None if rule.touchpoint_id is None else touchpoint_keys.get(
            rule.touchpoint_id),
        "parameters": parameters_of(rule), "created_at": rule.created_at.isoformat(),
    }


def remove_rule(session: Session, rule_id: int) -> AlertRule:
    """Delete the rule; its open alerts are resolved by the next evaluation, and its alerts stay
    in the history."""
    rule = find_rule(session, rule_id)
    session.delete(rule)
    return rule
