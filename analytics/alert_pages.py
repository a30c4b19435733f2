"""The alerts page, /dashboard/alerts: the open alerts, the last ones resolved and the rules
that raise them, for analysts; admins also add and remove rules there. The rules are those of
`analytics.alert_rules`, which the API follows too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from analytics import alert_rules, alerts
from shortener.forms import submit
from shortener.models import Role
from shortener.nav import add_nav_item
from shortener.signin import current_user, signed_in
from shortener.touchpoints import list_touchpoints
from shortener.unit_of_work import db_session

bp = Blueprint("alert_pages", __name__, template_folder="templates")

# Each kind's parameters are fields of their own (`drop.probability`), the API's names after it.
LABELS = {"kind": "Kind", "touchpoint": "Touchpoint", **{
    f"{kind}.{name}": f"{kind.replace('_', ' ').capitalize()}: {name.replace('_', ' ')}"
    for kind, names in alert_rules.PARAMETERS.items() for name in names
}}
RESOLVED_SHOWN = 20


def _page(*, errors: dict[str, str] | None = None, values: Mapping[str, Any] | None = None
          ) -> str:
    session = db_session()
    touchpoints = list_touchpoints(session)
    keys = {tp.id: tp.key for tp in touchpoints}
    user = current_user()
    return render_template(
        "alerts.html",
        open_alerts=alerts.list_alerts(session, state="open", limit=alerts.MAX_LISTED),
        resolved=alerts.list_alerts(session, state="resolved", limit=RESOLVED_SHOWN),
        rules=[alert_rules.rule_json(rule, keys) for rule in alert_rules.list_rules(session)],
        touchpoint_options=[(tp.key, tp.name) for tp in touchpoints if not tp.archived],
        parameters=alert_rules.PARAMETERS,
        can_edit=user is not None and Role(user.role).allows(Role.ADMIN),
        errors=errors or {},
        values=values or {},
        labels=LABELS,
    )


@bp.get("/dashboard/alerts")
@signed_in(Role.ANALYST)
def alert_list() -> str:
    return _page()


@bp.post("/dashboard/alerts/rules")
@signed_in(Role.ADMIN)
def rule_add() -> Any:
    def add() -> BaseResponse:
        data = alert_rules.RuleInput.from_json(_rule(request.form))
        rule = alert_rules.add_rule(db_session(), data)
        flash(f"Rule {rule.id} added: it is evaluated every minute.", "success")
        return redirect(url_for(".alert_list") + "#rules")

    return submit(add, lambda errors: _page(errors=_fields(errors), values=request.form))


@bp.post("/dashboard/alerts/rules/<int:rule_id>/remove")
@signed_in(Role.ADMIN)
def rule_remove(rule_id: int) -> Any:
    def remove() -> BaseResponse:
        alert_rules.remove_rule(db_session(), rule_id)
        flash(f"Rule {rule_id} removed: its open alerts are resolved within a minute.", "success")
        return redirect(url_for(".alert_list") + "#rules")

    return submit(remove, lambda errors: _page(errors=errors))


def _rule(form: Mapping[str, str]) -> dict[str, Any]:
    """The form as the API's body: the kind's own parameters that were filled in, as numbers
    where they read as numbers (anything else is left for the rule's checks to refuse)."""
    kind = form.get("kind", "")
    parameters: dict[str, Any] = {}
    for name in alert_rules.PARAMETERS.get(kind, {}):
        raw = form.get(f"{kind}.{name}", "").strip()
        if raw:
            parameters[name] = _number(raw)
    return {"kind": kind, "touchpoint": form.get("touchpoint") or None, "parameters": parameters}


def _fields(errors: dict[str, str]) -> dict[str, str]:
    """The API's refusal of `parameters.hours` shown at the kind's field (`silent.hours`)."""
    kind = request.form.get("kind", "")
    return {f"{kind}.{name.removeprefix('parameters.')}" if name.startswith("parameters.")
            else name: message for name, message in errors.items()}


def _number(raw: str) -> Any:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    add_nav_item(
        app, "alert_pages.alert_list", "Alerts", role=Role.ANALYST, position=15,
        section="alert_pages.",
    )
