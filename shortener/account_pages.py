"""A person's own account page, /account: who they are signed in as, and the weekly digest
e-mail (analytics.digest), which each person turns on or off for themselves."""

from __future__ import annotations

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from shortener.models import Role
from shortener.runtime import runtime
from shortener.signin import current_user, signed_in

bp = Blueprint("account", __name__)


@bp.get("/account")
@signed_in(Role.ANALYST)
def account() -> str:
    return render_template("account.html", mail_configured=bool(runtime().settings.smtp_host))


@bp.post("/account")
@signed_in(Role.ANALYST)
def save_account() -> BaseResponse:
    user = current_user()
    assert user is not None  # signed_in saw to it
    user.weekly_digest = request.form.get("weekly_digest") == "on"
    flash("The weekly digest is on: it comes on the next weekly run." if user.weekly_digest
          else "The weekly digest is off.", "success")
    return redirect(url_for("account.account"), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
