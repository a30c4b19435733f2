"""Alert rules: what to watch (silent, drop, bot_spike), for one touchpoint or for all, with
parameters checked when the rule is made and stored complete, defaults filled in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.models import AlertRule
from shortener import request_input
from shortener.errors import (
    ConflictError,
    InvalidFieldError,
    NotFoundError,
    UnknownReferenceError,
)
from shortener.models import Touchpoint

KINDS = ("silent", "drop", "bot_spike")


class RuleExistsError(ConflictError):
    code = "rule_exists"


def _whole(low: int, high: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidFieldError(name, f"must be a whole number from {low} to {high}")
        return value

    return check


def _share(low: float, high: float, *, above_low: bool = True) -> Callable[[str, Any], float]:
    def check(name: str, value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and (value <= low if above_low else value < low):
            ok = False
        if not ok or value > high:
            bound = "above" if above_low else "at least"
            raise InvalidFieldError(name, f"must be a number {bound} {low:g} and at most {high:g}")
        return float(value)

    return check


# Each kind's parameters: their defaults and checks.
PARAMETERS: dict[str, dict[str, tuple[Any, Callable[[str, Any], Any]]]] = {
    "silent": {
        "hours": (6, _whole(1, 168)),
        "probability": (0.01, _share(0, 0.5)),
    },
    "drop": {
        "threshold": (0.5, _share(0, 1)),  # the last 24 h at most this share of the expected
        "probability": (0.01, _share(0, 0.5)),
    },
    "bot_spike": {
        "min_clicks": (20, _whole(1, 1_000_000)),
        "ratio": (3.0, _share(1, 1000, above_low=False)),  # at least this many times expected
        "probability": (0.01, _share(0, 0.5)),
    },
}


@dataclass(frozen=True, slots=True)
class RuleInput:
    kind: str
    touchpoint: str | None  # a touchpoint's key; None: every touchpoint
    parameters: dict[str, Any]

    @classmethod
    def from_json(cls, data: Any) -> RuleInput:
        data = request_input.json_object(data)
        request_input.reject_unknown(data, frozenset({"kind", "touchpoint", "parameters"}))
        kind = data.get("kind")
        if kind not in KINDS:
            raise InvalidFieldError("kind", f"must be one of {', '.join(KINDS)}")
        touchpoint = request_input.string(data, "touchpoint", max_length=64)
        given = data.get("parameters") or {}
        if not isinstance(given, dict):
            raise InvalidFieldError("parameters", "must be an object")
        known = PARAMETERS[kind]
        for name in given:
            if name not in known:
                raise InvalidFieldError(
                    f"parameters.{name}",
                    f"is not a parameter of {kind} (it takes: {', '.join(known)})",
                )
        parameters = {
            name: check(f"parameters.{name}", given[name]) if name in given else default
            for name, (default, check) in known.items()
        }
        return cls(kind, touchpoint if isinstance(touchpoint, str) else None, parameters)


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


def rule_json(rule: AlertRule, touchpoint_keys: dict[int, str]) -> dict[str, Any]:
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
