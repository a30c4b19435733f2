"""Links: create, list, update and archive short links tagged with a touchpoint and a stage."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from shortener import request_input, schemas, slug_history, webhooks
from shortener.clicks import SCAN_PARAM
from shortener.db import add_unique, unique_or
from shortener.domains import link_domain
from shortener.errors import (
    InvalidFieldError,
    InvalidParameterError,
    InvalidURLError,
    NotFoundError,
    SlugTakenError,
)
from shortener.models import (
    MAX_ID,
    REDIRECT_STATUSES,
    SURVEY_SCALES,
    SURVEY_THEN,
    Link,
    Stage,
    Touchpoint,
)
from shortener.slugs import looks_like_slug, random_slug, slug_key, validate_slug
from shortener.stages import find_stage
from shortener.touchpoints import find_touchpoint
from shortener.unit_of_work import link_changed
from shortener.urls import MAX_URL_LENGTH, validate_destination

RANDOM_SLUG_ATTEMPTS = 8
MAX_PAGE = 200


Destination = Annotated[str, schemas.Address(MAX_URL_LENGTH)]


class Survey(schemas.Body):
    """The one question asked after a click, or (null) none."""

    kind: Annotated[str, schemas.OneOf(*SURVEY_SCALES)]
    question: Annotated[str, schemas.Line(300)] | None = Field(
        default=None, description="the kind's own if null"
    )
    then: Annotated[str, schemas.OneOf(*SURVEY_THEN)] = "thanks"


class _LinkSettings(schemas.Body):
    """What a create and an update both take; null clears those that may be cleared."""

    campaign: schemas.Text | None = None
    title: Annotated[str, schemas.Line(300)] | None = None
    redirect_status: Annotated[int, schemas.OneOf(*REDIRECT_STATUSES)] = schemas.optional()
    utm: bool = schemas.optional(description="add utm_source, utm_medium, utm_campaign")
    expires_at: schemas.Timestamp | None = None
    starts_at: schemas.Timestamp | None = None
    fallback_url: Destination | None = None
    track_conversions: bool = schemas.optional()
    survey: Survey | None = None


class LinkChange(_LinkSettings):
    """Only the fields given change."""

    url: Destination = schemas.optional()
    touchpoint: schemas.Key = schemas.optional()
    stage: schemas.Key = schemas.optional()
    slug: Annotated[str, schemas.Line(1000)] = schemas.optional()
    archived: bool = schemas.optional()


class NewLink(_LinkSettings):
    url: Destination
    touchpoint: schemas.Key
    stage: schemas.Key
    slug: Annotated[str, schemas.Line(1000)] = schemas.optional(
        description="drawn at random when absent"
    )
    domain: Annotated[str, schemas.Line(300)] | None = Field(
        default=None, description="the default one if null"
    )


@dataclass(frozen=True, slots=True)
class LinkInput:
    """Fields of a create (url, touchpoint and stage required) or an update (only those given)."""

    values: dict[str, Any]

    @classmethod
    def from_json(cls, data: Any, *, partial: bool = False) -> LinkInput:
        model: type[NewLink | LinkChange] = LinkChange if partial else NewLink
        return cls.of(schemas.validate_body(model, data))

    @classmethod
    def of(cls, body: NewLink | LinkChange) -> LinkInput:
        values = body.given()
        if "survey" in values:
            survey = values.pop("survey")
            values |= {
                "survey_kind": survey.kind if survey else None,
                "survey_question": survey.question if survey else None,
                "survey_then": survey.then if survey else None,
            }
        return cls(values)

    @classmethod
    def from_form(cls, form: Mapping[str, str], *, editing: Link | None = None) -> LinkInput:
        """A create's input, or with `editing`, an update's (the touchpoint only when it changes,
        so that a link of an archived touchpoint can still be edited)."""
        partial = editing is not None
        data: dict[str, Any] = {name: form.get(name, "") for name in ("url", "touchpoint", "stage")}
        if editing is not None and data["touchpoint"] == editing.touchpoint.key:
            del data["touchpoint"]
        slug = form.get("slug", "").strip()
        if slug:
            data["slug"] = slug
        for name in ("campaign", "title", "starts_at", "expires_at", "fallback_url"):
            request_input.form_optional(form, data, name, partial=partial)
        data["utm"] = form.get("utm") == "on"
        data["track_conversions"] = form.get("track_conversions") == "on"
        status = form.get("redirect_status", "").strip()
        if status:
            data["redirect_status"] = request_input.form_number(status, "redirect_status")
        kind = form.get("survey_kind", "").strip()
        data["survey"] = None  # no kind takes the survey off
        if kind:
            data["survey"] = {
                "kind": kind,
                "question": form.get("survey_question", "").strip() or None,  # the kind's own
                "then": form.get("survey_then", "").strip() or "thanks",
            }
        return cls.from_json(data, partial=partial)


@dataclass(frozen=True, slots=True)
class LinkFilter:
    touchpoint: str | None = None
    stage: str | None = None
    campaign: str | None = None
    q: str | None = None
    include_archived: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LinkFilter:
        """The filters of a list request's query string; a 400 naming a malformed one."""
        return cls(
            touchpoint=request_input.text_param(args, "touchpoint", max_length=64),
            stage=request_input.text_param(args, "stage", max_length=64),
            campaign=request_input.text_param(args, "campaign"),
            q=request_input.text_param(args, "q"),
            include_archived=args.get("archived") == "include",
        )


@dataclass(frozen=True, slots=True)
class CheckedLink:
    link: Link  # in no session yet, and without its slug
    slug: str | None  # the custom slug; None when one is to be drawn


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Link]
    next_cursor: str | None


def create_link(
    session: Session,
    data: LinkInput,
    *,
    own_hosts: Collection[str],
    default_status: int = 302,
) -> Link:
    """Create a link on the domain it names, else the default one; a taken custom slug is a
    409, a random one is drawn again."""
    domain = link_domain(session, data.values.get("domain"))
    checked = check_link(
        data,
        domain=domain,
        own_hosts=own_hosts,
        default_status=default_status,
        touchpoint=lambda key: find_touchpoint(session, key),
        stage=lambda key: find_stage(session, key),
    )
    link, slug = checked.link, checked.slug
    if slug is not None:
        slug_history.check_free(session, domain, slug)
        link.slug = slug
        add_unique(session, link, lambda: SlugTakenError(slug, domain))
    else:
        _add_with_random_slug(session, link)
    link_changed(session, link.domain, link.slug)  # a cached "not found" may linger
    webhooks.link_event(session, "link.created", link)
    return link


def check_link(
    data: LinkInput,
    *,
    domain: str,
    own_hosts: Collection[str],
    default_status: int,
    touchpoint: Callable[[str], Touchpoint],
    stage: Callable[[str], Stage],
) -> CheckedLink:
    """The link `data` describes with every rule checked but whether its slug is free, added to
    no session. `touchpoint` and `stage` return what a key names, or raise as `find_touchpoint`
    and `find_stage` do."""
    values = data.values
    check_expiry(values.get("expires_at"), datetime.now(UTC))
    check_window(values.get("starts_at"), values.get("expires_at"))
    link = Link(
        domain=domain,
        destination=validate_destination(values["url"], own_hosts=own_hosts),
        touchpoint=touchpoint(values["touchpoint"]),
        stage=stage(values["stage"]),
        campaign=values.get("campaign"),
        title=values.get("title"),
        redirect_status=values.get("redirect_status", default_status),
        utm=values.get("utm", True),
        expires_at=values.get("expires_at"),
        starts_at=values.get("starts_at"),
        fallback_url=validate_fallback(values.get("fallback_url"), own_hosts),
        track_conversions=values.get("track_conversions", False),
        survey_kind=values.get("survey_kind"),
        survey_question=values.get("survey_question"),
        survey_then=values.get("survey_then"),
    )
    return CheckedLink(link, validate_slug(values["slug"]) if "slug" in values else None)


# A link made to die at once, or before it goes live, is a typo (of a year, a month) found only
# once the codes are printed.
def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise InvalidFieldError("expires_at", "is in the past: a link would answer 410 at once")


def check_window(starts_at: datetime | None, expires_at: datetime | None) -> None:
    if starts_at is not None and expires_at is not None and expires_at <= starts_at:
        raise InvalidFieldError(
            "expires_at", f"must be after starts_at ({starts_at.isoformat()}): the link would "
            "never be live"
        )


def validate_fallback(url: str | None, own_hosts: Collection[str]) -> str | None:
    """Where the link sends customers once archived or expired; validated as a destination."""
    if not url:
        return None
    try:
        return validate_destination(url, own_hosts=own_hosts)
    except InvalidURLError as exc:
        raise InvalidURLError("fallback_url", exc.message.split(": ", 1)[-1]) from None


def _add_with_random_slug(session: Session, link: Link) -> None:
    for _ in range(RANDOM_SLUG_ATTEMPTS):
        link.slug = random_slug()
        if slug_history.taken(session, link.domain, [link.slug_key]):
            continue
        try:
            add_unique(session, link, lambda: SlugTakenError(link.slug, link.domain))
            return
        except SlugTakenError:
            continue  # the savepoint rolled back and let go of `link`; draw again
    raise SlugTakenError(link.slug, link.domain)


def get_link(session: Session, link_id: int) -> Link:
    # An id past the column's range would make the database itself complain.
    link = session.get(Link, link_id) if 0 < link_id <= MAX_ID else None
    if link is None:
        raise NotFoundError(f"No link with id {link_id}.")
    return link


def find_link_by_slug(session: Session, domain: str, slug: str) -> Link:
    """The link of `slug` on `domain`, whatever its letter case, or the link that gave it up."""
    link = None
    if looks_like_slug(slug):
        link = session.scalars(
            select(Link).where(Link.domain == domain, Link.slug_key == slug_key(slug))
        ).one_or_none() or slug_history.link_of_old_slug(session, domain, slug)
    if link is None:
        raise NotFoundError(f"No link with slug '{slug}' on {domain}.")
    return link


def update_link(
    session: Session,
    link_id: int,
    data: LinkInput,
    *,
    own_hosts: Collection[str],
    now: datetime,
) -> Link:
    """Change the fields given; a slug another link holds is a 409 and nothing changes."""
    link = get_link(session, link_id)
    values = dict(data.values)
    if "archived" in values and values["archived"] != link.archived:
        values["archived_at"] = now if values["archived"] else None
    # Everything is checked before anything changes, so a refusal leaves the link as it was.
    if "url" in values:
        values["destination"] = validate_destination(values.pop("url"), own_hosts=own_hosts)
    if "touchpoint" in values:
        values["touchpoint"] = find_touchpoint(session, values["touchpoint"])
    if "stage" in values:
        values["stage"] = find_stage(session, values["stage"])
    expires_at = values.get("expires_at", link.expires_at)
    starts_at = values.get("starts_at", link.starts_at)
    if expires_at != link.expires_at:  # one already past may stay as it is
        check_expiry(expires_at, now)
    check_window(starts_at, expires_at)
    if "fallback_url" in values:
        values["fallback_url"] = validate_fallback(values["fallback_url"], own_hosts)
    if "slug" in values:
        values["slug"] = validate_slug(values["slug"])
    old_slug, domain = link.slug, link.domain
    slug = values.get("slug", old_slug)
    if slug_key(slug) != link.slug_key:
        slug_history.check_free(session, domain, slug, link_id=link.id)
    with unique_or(session, lambda: SlugTakenError(slug, domain)):
        for name, value in values.items():
            setattr(link, name, value)
    if slug != old_slug:
        slug_history.renamed(session, link, old_slug, now=now)  # printed codes carry the old one
    link_changed(session, domain, old_slug)
    slug_history.links_changed(session, [link])
    webhooks.link_event(session, "link.updated", link)
    return link


def archive_link(session: Session, link_id: int, *, now: datetime) -> Link:
    link = get_link(session, link_id)
    if not link.archived:
        link.archived, link.archived_at = True, now
        session.flush()
        webhooks.link_event(session, "link.updated", link)
    slug_history.links_changed(session, [link])
    return link


def list_links(
    session: Session, where: LinkFilter, *, limit: int = 50, cursor: str | None = None
) -> Page:
    """Newest first, `limit` at a time; `cursor` is the `next_cursor` of the previous page."""
    query = select(Link).order_by(Link.id.desc()).limit(limit + 1)
    if where.touchpoint:
        query = query.join(Link.touchpoint).where(Touchpoint.key == where.touchpoint)
    if where.stage:
        query = query.join(Link.stage).where(Stage.key == where.stage)
    if where.campaign:
        query = query.where(Link.campaign == where.campaign)
    if where.q:
        pattern = f"%{_escape_like(where.q)}%"
        query = query.where(
            or_(
                Link.slug.ilike(pattern, escape="\\"),
                Link.destination.ilike(pattern, escape="\\"),
                Link.title.ilike(pattern, escape="\\"),
            )
        )
    if not where.include_archived:
        query = query.where(Link.archived.is_(False))
    if cursor:
        query = query.where(Link.id < decode_cursor(cursor))
    rows = session.scalars(query).unique().all()
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, encode_cursor(items[-1].id) if more else None)


def campaign_names(session: Session) -> list[str]:
    query = select(Link.campaign).where(Link.campaign.is_not(None)).distinct()
    return sorted(name for name in session.scalars(query) if name)


def stage_coverage(session: Session) -> dict[int, dict[int, int]]:
    """Live links per touchpoint per stage: {touchpoint id: {stage id: links}}."""
    coverage: dict[int, dict[int, int]] = defaultdict(dict)
    rows = session.execute(
        select(Link.touchpoint_id, Link.stage_id, func.count())
        .where(Link.archived.is_(False))
        .group_by(Link.touchpoint_id, Link.stage_id)
    )
    for touchpoint_id, stage_id, count in rows:
        coverage[touchpoint_id][stage_id] = int(count)
    return coverage


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "id" or not value.isascii() or not value.isdigit() or len(value) > 10:
            raise ValueError(raw)
        last_id = int(value)
        if not 0 < last_id <= MAX_ID:
            raise ValueError(raw)
        return last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidParameterError("cursor", "is not a cursor this API returned") from None


def is_expired(link: Link, now: datetime) -> bool:
    return link.expires_at is not None and link.expires_at <= now


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- how a link is shown ----------------------------------------------------------------------


def short_url(link: Link, *, scheme: str) -> str:
    return f"{scheme}://{link.domain}/{link.slug}"


def scan_url(link: Link, *, scheme: str) -> str:
    """What the link's QR code encodes: the short URL marked as a scan."""
    return f"{short_url(link, scheme=scheme)}?{SCAN_PARAM}=1"


class SurveyOut(TypedDict):
    kind: str
    question: str | None
    then: str


class LinkOut(TypedDict):
    id: int
    slug: str
    domain: str
    short_url: str
    url: str
    touchpoint: str
    stage: str
    campaign: str | None
    title: str | None
    redirect_status: int
    utm: bool
    expires_at: schemas.TimeText | None
    starts_at: schemas.TimeText | None
    fallback_url: str | None
    created_at: schemas.TimeText
    archived: bool
    track_conversions: bool
    survey: SurveyOut | None
    qr_svg: str
    qr_png: str


def link_json(link: Link, *, scheme: str) -> LinkOut:
    return {
        "id": link.id,
        "slug": link.slug,
        "domain": link.domain,
        "short_url": short_url(link, scheme=scheme),
        "url": link.destination,
        "touchpoint": link.touchpoint.key,
        "stage": link.stage.key,
        "campaign": link.campaign,
        "title": link.title,
        "redirect_status": link.redirect_status,
        "utm": link.utm,
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
        "starts_at": link.starts_at.isoformat() if link.starts_at else None,
        "fallback_url": link.fallback_url,
        "created_at": link.created_at.isoformat(),
        "archived": link.archived,
        "track_conversions": link.track_conversions,
        "survey": (
            SurveyOut(kind=link.survey_kind, question=link.survey_question,
                      then=link.survey_then or "thanks")
            if link.survey_kind else None
        ),
        "qr_svg": f"/api/v1/links/{link.id}/qr.svg",
        "qr_png": f"/api/v1/links/{link.id}/qr.png",
    }
