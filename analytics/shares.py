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
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from analytics.dashboard import PARAMETERS, WINDOW, DashboardQuery
from analytics.models import SharedReport
from shortener import schemas, stages
from shortener.errors import DomainError, InvalidFieldError, NotFoundError

DEFAULT_DAYS = 30
MAX_DAYS = 365
# What the reader may still change: how the page is drawn, never what it counts.
DISPLAY = PARAMETERS - frozenset(WINDOW)
SALT = "touchlink shared report"


def _one_refusal(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:  # a refusal per form, named after it (`view.str`): one, of `view`
        raise ValueError("must be a query string or an object of strings") from None


# The dashboard's window and filters: a query string, or an object of its parameters.
View = Annotated[str | dict[str, str], WrapValidator(_one_refusal)]


class NewShare(schemas.Body):
    name: Annotated[str, schemas.Line(120)]
    view: View = Field(
        default="", description="the dashboard's window and filters, such as "
        "`range=30d&stage=consideration`; absent: its default window"
    )
    days: Annotated[int, schemas.Between(1, MAX_DAYS)] | None = Field(
        default=None, description=f"how long its link opens ({DEFAULT_DAYS} if absent or null)"
    )


@dataclass(frozen=True, slots=True)
class ShareInput:
    name: str
    view: str  # the window and filters, as a query string
    days: int

    @classmethod
    def from_json(cls, session: Session, data: Any, *, now: datetime, zone: ZoneInfo
                  ) -> ShareInput:
        return cls.of(session, schemas.validate_body(NewShare, data), now=now, zone=zone)

    @classmethod
    def of(cls, session: Session, body: NewShare, *, now: datetime, zone: ZoneInfo
           ) -> ShareInput:
        """A view naming anything but the window and filters, or that the dashboard would
        refuse, is a 422."""
        return cls(body.name, check_view(session, body.view, now=now, zone=zone),
                   body.days or DEFAULT_DAYS)


def check_view(session: Session, view: str | Mapping[str, str], *, now: datetime,
               zone: ZoneInfo) -> str:
    """The view as stored: the window and filters the dashboard reads from it, of a stage that
    exists."""
    if isinstance(view, str):
        args = dict(parse_qsl(view.removeprefix("?"), keep_blank_values=True))
    else:
        args = dict(view)
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


class ShareOut(TypedDict):
    id: int
    name: str
    view: str  # the window and filters, as a query string
    url: str  # the link that opens it, for anyone who has it
    created_by: str
    created_at: schemas.TimeText
    expires_at: schemas.TimeText
    revoked_at: schemas.TimeText | None
    live: bool  # whether its link opens now


def share_json(share: SharedReport, *, url: str, now: datetime) -> ShareOut:
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
