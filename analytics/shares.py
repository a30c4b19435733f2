"""Shared reports: a dashboard view, its window and filters fixed, for people without an account.

An admin makes one; its link (`/shared/<token>`) carries the share's id and a signature of the
id and a random nonce under the installation's secret, so it cannot be guessed or altered. It
opens until it expires or is revoked; after that, or tampered with, it is a plain 404, which
says nothing about why.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.dashboard import PARAMETERS, WINDOW, DashboardQuery
from analytics.models import SharedReport
from shortener import request_input, stages
from shortener.errors import DomainError, InvalidFieldError, NotFoundError
from shortener.request_input import MISSING

DEFAULT_DAYS = 30
MAX_DAYS = 365
# What the reader may still change: how the page is drawn, never what it counts.
DISPLAY = PARAMETERS - frozenset(WINDOW)
SALT = "touchlink shared report"


@dataclass(frozen=True, slots=True)
class ShareInput:
    name: str
    view: str  # the window and filters, as a query string
    days: int

    @classmethod
    def from_json(cls, session: Session, data: Any, *, now: datetime, zone: ZoneInfo
                  ) -> ShareInput:
        """`name`, `view` (the dashboard's window and filters: a query string such as
        `range=30d&stage=consideration`, or an object of them) and `days` it lasts (1 to 365,
        default 30). A view naming anything else, or that the dashboard would refuse, is a 422."""
        data = request_input.json_object(data)
        request_input.reject_unknown(data, frozenset({"name", "view", "days"}))
        name = request_input.string(data, "name", required=True, max_length=120)
        days = request_input.integer(data, "days", low=1, high=MAX_DAYS)
        return cls(name, check_view(session, data.get("view", ""), now=now, zone=zone),
                   DEFAULT_DAYS if days in (MISSING, None) else days)


def check_view(session: Session, view: Any, *, now: datetime, zone: ZoneInfo) -> str:
    """The view as stored: the window and filters the dashboard reads from it, of a stage that
    exists."""
    if isinstance(view, str):
        args = dict(parse_qsl(view.removeprefix("?"), keep_blank_values=True))
    elif isinstance(view, Mapping) and all(isinstance(v, str) for v in view.values()):
        args = dict(view)
    else:
        raise InvalidFieldError("view", "must be a query string or an object of strings")
    try:
        query = DashboardQuery.from_args(args, now=now, zone=zone, takes=WINDOW)
        if query.report.stage:
            stages.get_stage(session, query.report.stage)
    except DomainError as exc:
        raise InvalidFieldError("view", exc.message) from exc
    return urlencode(query.window_args())


def add_share(session: Session, data: ShareInput, *, by: str, now: datetime) -> SharedReport:
    share = SharedReport(name=data.name, view=data.view, nonce=secrets.token_hex(16),
                         created_by=by, created_at=now, expires_at=now + timedelta(days=data.days))
    session.add(share)
    session.flush()
    return share


def token_of(share: SharedReport, *, secret_key: str) -> str:
    return str(_signer(secret_key).dumps([share.id, share.nonce]))


def open_share(session: Session, token: str, *, secret_key: str, now: datetime) -> SharedReport:
    """The share a link's token opens; a 404 if it is altered, revoked or expired."""
    try:
        share_id, nonce = _signer(secret_key).loads(token)
    except (BadSignature, TypeError, ValueError):
        raise NotFoundError("No such shared report.") from None
    share = session.get(SharedReport, share_id) if isinstance(share_id, int) else None
    if share is None or not secrets.compare_digest(share.nonce, str(nonce)) or not live(share, now):
        raise NotFoundError("No such shared report.")
    return share


def live(share: SharedReport, now: datetime) -> bool:
    return share.revoked_at is None and now < share.expires_at


def view_args(share: SharedReport, asked: Mapping[str, str]) -> dict[str, str]:
    """The dashboard's parameters for a reader of `share`: its own window and filters, and of
    what the reader asked (`asked`) only how the page is drawn."""
    return {**{k: v for k, v in asked.items() if k in DISPLAY}, **dict(parse_qsl(share.view))}


def list_shares(session: Session) -> list[SharedReport]:
    return list(session.scalars(select(SharedReport).order_by(SharedReport.id.desc())))


def find_share(session: Session, share_id: int) -> SharedReport:
    share = session.get(SharedReport, share_id)
    if share is None:
        raise NotFoundError(f"No shared report {share_id}.")
    return share


def revoke_share(session: Session, share_id: int, *, now: datetime) -> SharedReport:
    """Its link stops opening at once; the share stays listed, revoked (doing it again keeps the
    first time)."""
    share = find_share(session, share_id)
    if share.revoked_at is None:
        share.revoked_at = now
    return share


def share_json(share: SharedReport, *, url: str, now: datetime) -> dict[str, Any]:
    return {
        "id": share.id,
        "name": share.name,
        "view": share.view,
        "url": url,
        "created_by": share.created_by,
        "created_at": share.created_at.isoformat(),
        "expires_at": share.expires_at.isoformat(),
        "revoked_at": share.revoked_at.isoformat() if share.revoked_at else None,
        "live": live(share, now),
    }


def _signer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=SALT)
