"""`/api/v1/alerts`: the alerts raised and resolved, and the rules that raise them (analysts
read, admins change)."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint, Flask
from sqlalchemy import select

from analytics import alert_rules, alerts
from analytics.alert_rules import NewRule, RuleOut
from analytics.alerts import AlertOut
from shortener import schemas
from shortener.api_auth import requires
from shortener.models import Role, Touchpoint
from shortener.openapi import operation
from shortener.schemas import Items
from shortener.unit_of_work import db_session

bp = Blueprint("alerts_api", __name__, url_prefix="/api/v1/alerts")


class AlertQuery(schemas.Query):
    state: Annotated[str, schemas.OneOf("all", "open", "resolved")] = "all"
    limit: Annotated[int, schemas.Between(1, alerts.MAX_LISTED)] = 100


@bp.get("")
@requires(Role.ANALYST)
@operation("Alerts, newest first", query=AlertQuery, responses={200: Items[AlertOut]})
def list_alerts(query: AlertQuery) -> Any:
    found = alerts.list_alerts(db_session(), state=query.state, limit=query.limit)
    return {"items": [alerts.alert_json(alert, touchpoint) for alert, touchpoint in found]}


@bp.get("/rules")
@requires(Role.ANALYST)
@operation("The alert rules, oldest first", responses={200: Items[RuleOut]})
def list_rules() -> Any:
    session = db_session()
    return {"items": [alert_rules.rule_json(rule, _keys(session))
                      for rule in alert_rules.list_rules(session)]}


@bp.post("/rules")
@requires(Role.ADMIN)
@operation("Add an alert rule, evaluated every minute", body=NewRule,
           responses={201: RuleOut}, errors=(409,))
def add_rule(body: NewRule) -> Any:
    session = db_session()
    rule = alert_rules.add_rule(session, alert_rules.RuleInput.of(body))
    return alert_rules.rule_json(rule, _keys(session)), 201


@bp.delete("/rules/<int:rule_id>")
@requires(Role.ADMIN)
@operation("Delete an alert rule; its open alerts are resolved within a minute",
           responses={204: None})
def remove_rule(rule_id: int) -> Any:
    alert_rules.remove_rule(db_session(), rule_id)
    return "", 204


def _keys(session: Any) -> dict[int, str]:
    return dict(session.execute(select(Touchpoint.id, Touchpoint.key)).all())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
