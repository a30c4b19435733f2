"""`/api/v1/alerts`: the alerts raised and resolved, and the rules that raise them (analysts
read, admins change)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, request
from sqlalchemy import select

from analytics import alert_rules, alerts
from analytics.reports.query import check_known
from shortener.api_auth import requires
from shortener.errors import InvalidParameterError
from shortener.models import Role, Touchpoint
from shortener.openapi import json_body as body
from shortener.unit_of_work import db_session

bp = Blueprint("alerts_api", __name__, url_prefix="/api/v1/alerts")

STATES = ("all", "open", "resolved")


@bp.get("")
@requires(Role.ANALYST)
def list_alerts() -> Any:
    check_known(request.args, {"state", "limit"})
    state = request.args.get("state") or "all"
    if state not in STATES:
        raise InvalidParameterError("state", f"must be one of {', '.join(STATES)}")
    limit = _limit(request.args.get("limit"))
    found = alerts.list_alerts(db_session(), state=state, limit=limit)
    return {"items": [alerts.alert_json(alert, touchpoint) for alert, touchpoint in found]}


@bp.get("/rules")
@requires(Role.ANALYST)
def list_rules() -> Any:
    session = db_session()
    return {"items": [alert_rules.rule_json(rule, _keys(session))
                      for rule in alert_rules.list_rules(session)]}


@bp.post("/rules")
@requires(Role.ADMIN)
def add_rule() -> Any:
    session = db_session()
    rule = alert_rules.add_rule(session, alert_rules.RuleInput.from_json(body()))
    return alert_rules.rule_json(rule, _keys(session)), 201


@bp.delete("/rules/<int:rule_id>")
@requires(Role.ADMIN)
def remove_rule(rule_id: int) -> Any:
    alert_rules.remove_rule(db_session(), rule_id)
    return "", 204


def _limit(raw: str | None) -> int:
    if not raw:
        return 100
    if not raw.isdigit() or not 1 <= int(raw) <= alerts.MAX_LISTED:
        raise InvalidParameterError(
            "limit", f"must be a whole number from 1 to {alerts.MAX_LISTED}"
        )
    return int(raw)


def _keys(session: Any) -> dict[int, str]:
    return dict(session.execute(select(Touchpoint.id, Touchpoint.key)).all())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
