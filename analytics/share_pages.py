"""Shared reports on the web: `/api/v1/shares` (admin keys), the admin's page of them
(`/dashboard/shares`, with the dashboard's "Share this view"), and the read-only dashboard a
link opens for anyone (`/shared/<token>`). The rules are those of `analytics.shares`."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from analytics import shares
from analytics.dashboard import WINDOW, DashboardQuery, dashboard_context, table_csv
from analytics.models import SharedReport
from analytics.shares import NewShare, ShareOut
from shortener.api_auth import requires
from shortener.db import utcnow
from shortener.errors import InvalidParameterError
from shortener.forms import submit
from shortener.models import Role
from shortener.openapi import operation
from shortener.runtime import runtime
from shortener.schemas import Items
from shortener.signin import current_user, signed_in
from shortener.unit_of_work import db_session, report_session, rollback_request

bp = Blueprint("shares", __name__, template_folder="templates")


def _url(share: SharedReport) -> str:
    token = shares.token_of(share, secret_key=runtime().settings.secret_key)
    return url_for("shares.shared_dashboard", token=token, _external=True)


def _json(share: SharedReport) -> ShareOut:
    return shares.share_json(share, url=_url(share), now=utcnow())


# --- the API -----------------------------------------------------------------------------------


@bp.get("/api/v1/shares")
@requires(Role.ADMIN)
@operation("Shared reports, newest first, revoked and expired ones too",
           responses={200: Items[ShareOut]})
def list_shares() -> Any:
    return {"items": [_json(share) for share in shares.list_shares(db_session())]}


@bp.post("/api/v1/shares")
@requires(Role.ADMIN)
@operation("Share a dashboard view: a link that opens it read-only, for anyone, until it "
           "expires", body=NewShare, responses={201: ShareOut})
def add_share(body: NewShare) -> Any:
    now = utcnow()
    data = shares.ShareInput.of(db_session(), body, now=now, zone=runtime().settings.zone)
    share = shares.add_share(db_session(), data, by=f"API key {g.api_key.name}", now=now)
    return _json(share), 201


@bp.delete("/api/v1/shares/<int:share_id>")
@requires(Role.ADMIN)
@operation("Revoke a shared report: its link stops opening at once", responses={204: None})
def revoke_share(share_id: int) -> Any:
    shares.revoke_share(db_session(), share_id, now=utcnow())
    return "", 204


# --- the admin's page --------------------------------------------------------------------------


def _page(*, created: int | None = None, error: str | None = None) -> str:
    now = utcnow()
    found = shares.list_shares(db_session())
    return render_template(
        "shares.html", shares=found, urls={s.id: _url(s) for s in found}, created=created,
        error=error, live=lambda share: shares.live(share, now),
    )


@bp.get("/dashboard/shares")
@signed_in(Role.ADMIN)
def share_list() -> str:
    created = request.args.get("created", type=int)
    return _page(created=created)


@bp.post("/dashboard/shares")
@signed_in(Role.ADMIN)
def share_add() -> Any:
    """The dashboard's "Share this view": the view's window and filters, a name and days."""
    view = {k: v for k, v in request.form.items() if k in WINDOW}
    days = request.form.get("days", "").strip()
    data = {"name": request.form.get("name", "").strip() or "Shared dashboard", "view": view,
            "days": int(days) if days.isdecimal() else days or shares.DEFAULT_DAYS}

    def add() -> BaseResponse:
        now = utcnow()
        entry = shares.ShareInput.from_json(db_session(), data, now=now,
                                            zone=runtime().settings.zone)
        user = current_user()
        share = shares.add_share(db_session(), entry, by=user.email if user else "", now=now)
        return redirect(url_for("shares.share_list", created=share.id), 303)

    return submit(add, lambda errors: _page(error=" ".join(errors.values())))


@bp.post("/dashboard/shares/<int:share_id>/revoke")
@signed_in(Role.ADMIN)
def share_revoke(share_id: int) -> BaseResponse:
    shares.revoke_share(db_session(), share_id, now=utcnow())
    return redirect(url_for("shares.share_list"), 303)


# --- the shared dashboard ----------------------------------------------------------------------


@bp.get("/shared/<token>")
def shared_dashboard(token: str) -> Any:
    """The share's view, read-only: its window and filters fixed, the rest drawn as asked."""
    rt, session, now = runtime(), report_session(), utcnow()
    share = shares.open_share(db_session(), token, secret_key=rt.settings.secret_key, now=now)
    error, status = None, 200
    try:
        view = DashboardQuery.from_args(shares.view_args(share, request.args), now=now,
                                        zone=rt.settings.zone)
        if request.args.get("format") == "csv":
            return _private(table_csv(session, view, request.args.get("table", "")))
    except InvalidParameterError as exc:  # how it is drawn: shown as the share made it instead
        rollback_request()
        error, status = exc.message, 400
        view = DashboardQuery.from_args(shares.view_args(share, {}), now=now,
                                        zone=rt.settings.zone)

    def here(**args: str) -> str:
        kept: dict[str, Any] = {k: v for k, v in args.items() if k in shares.DISPLAY}
        return url_for("shares.shared_dashboard", token=token, **kept)

    context = {**dashboard_context(session, view), "here": here}
    page = render_template("dashboard.html", **context, shared=share, error=error)
    return _private(make_response(page, status))


def _private(response: Response) -> Response:
    # A link for the people it was given to: not for search engines, nor for shared caches.
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
