"""Which links a QR sheet prints: named one by one, or all the live links of a touchpoint or of a
channel; each refusal names what is wrong with the request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from shortener import schemas
from shortener.errors import BadRequestError, DomainError, InvalidParameterError, NotFoundError
from shortener.models import MAX_ID, Channel, Link, Stage, Touchpoint
from shortener.slugs import looks_like_slug, slug_key

# A sheet is drawn while its request waits: about 8 ms a code, so at most some 10 s.
MAX_CODES = 1000
SELECTORS = ("links", "touchpoint", "channel")
_CHANNELS = ", ".join(c.value for c in Channel)


class SelectionError(BadRequestError):
    """No selector, or more than one: the request does not say which codes it wants."""

    code = "invalid_selection"

    def __init__(self, message: str, given: Sequence[str]) -> None:
        super().__init__(message, details={"parameters": list(given)})


class TooManyCodesError(BadRequestError):
    code = "too_many_codes"

    def __init__(self, selected: int, limit: int) -> None:
        super().__init__(
            f"{selected:,} codes are selected; a sheet holds at most {limit:,}. "
            "Print them as several sheets.",
            details={"selected": selected, "limit": limit},
        )


class NothingToPrintError(DomainError):
    code = "nothing_to_print"
    status = 422


class UnknownLinksError(NotFoundError):
    def __init__(self, missing: Sequence[str]) -> None:
        shown = ", ".join(f"'{token}'" for token in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        super().__init__(
            f"links: no link with the id or slug {shown}{more}.",
            details={"parameter": "links", "missing": list(missing)},
        )


class UnprintableLinksError(DomainError):
    """A link named one by one that no longer redirects: its code would lead nowhere."""

    code = "link_not_printable"
    status = 422

    def __init__(self, slugs: Sequence[str]) -> None:
        shown = ", ".join(f"/{slug}" for slug in slugs)
        super().__init__(
            f"links: {shown} {'is' if len(slugs) == 1 else 'are'} archived or expired, "
            "so a printed code would lead to a 410 page; leave them out.",
            details={"parameter": "links", "links": list(slugs)},
        )


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _channel(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    channel = value.strip().lower()
    if channel not in set(Channel):
        raise ValueError(f"must be one of {_CHANNELS}, got {_shown(channel)}")
    return channel


class SelectionQuery(schemas.Query):
    """Which codes a sheet prints, as a query string (or a form) says it: one of the three."""

    links: Annotated[list[str], BeforeValidator(_one_or_more)] = Field(
        default_factory=list,
        description="link ids or slugs, comma-separated; the parameter may be repeated",
    )
    touchpoint: Annotated[str, schemas.Line(64)] | None = Field(
        default=None, description="every live link of this touchpoint"
    )
    channel: Annotated[
        str, BeforeValidator(_channel), WithJsonSchema({"enum": [c.value for c in Channel]})
    ] | None = Field(default=None, description="every live link of this channel's touchpoints")

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> SelectionQuery:
        """The selection of a query string or a form, its other fields left aside."""
        known = {name: value for name, value in args.items() if name in cls.model_fields}
        return schemas.validate_query(cls, known).every_link(args)

    def every_link(self, args: MultiDict[str, str]) -> SelectionQuery:
        """With every value of `links` in `args`: a query model is handed the first alone."""
        return self.model_copy(update={"links": args.getlist("links")})


@dataclass(frozen=True, slots=True)
class Selection:
    """Exactly one of: `links` (ids or slugs, in the order given), `touchpoint` (a key) or
    `channel`."""

    links: tuple[str, ...] = ()
    touchpoint: str | None = None
    channel: str | None = None

    @classmethod
    def from_args(cls, args: MultiDict[str, str], *, limit: int = MAX_CODES) -> Selection:
        """The selection of a query string or a form (see `of`)."""
        return cls.of(SelectionQuery.from_args(args), limit=limit)

    @classmethod
    def of(cls, query: SelectionQuery, *, limit: int = MAX_CODES) -> Selection:
        """`links=3,spring` (repeatable, as checkboxes send it), `touchpoint=KEY` or
        `channel=physical`; a 400 for none, for two, or for more than `limit` links named."""
        tokens = _link_tokens(query.links)
        chosen = {
            "links": any(value.strip() for value in query.links),
            "touchpoint": query.touchpoint is not None,
            "channel": query.channel is not None,
        }
        given = [name for name in SELECTORS if chosen[name]]
        if not given:
            raise SelectionError(
                "Choose the codes to print: links=<ids or slugs>, touchpoint=<key> "
                f"or channel=<{_CHANNELS.replace(', ', '|')}>.",
                given,
            )
        if len(given) > 1:
            raise SelectionError(
                f"Give only one of links, touchpoint or channel, not {' and '.join(given)}.",
                given,
            )
        if query.touchpoint is not None:
            return cls(touchpoint=query.touchpoint)
        if query.channel is not None:
            return cls(channel=query.channel)
        if not tokens:
            raise InvalidParameterError("links", "names no link")
        if len(tokens) > limit:
            raise TooManyCodesError(len(tokens), limit)
        return cls(links=tokens)


def _link_tokens(values: Sequence[str]) -> tuple[str, ...]:
    """The ids and slugs of `links`, each once, in the order first given."""
    seen: dict[str, None] = {}
    for value in values:
        for token in value.split(","):
            token = token.strip()
            if not token:
                continue
            if not looks_like_slug(token):
                raise InvalidParameterError(
                    "links", f"{_shown(token)} is neither a link id nor a slug"
                )
            seen.setdefault(token, None)
    return tuple(seen)


def _shown(raw: str) -> str:
    """A value quoted for a message, cropped so that a huge parameter cannot flood it."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def select_links(
    session: Session,
    selection: Selection,
    *,
    domain: str,
    now: datetime,
    limit: int = MAX_CODES,
) -> list[Link]:
    """The links to print, never an archived or expired one: those named in `links` in their
    order (a run of digits is an id, or else a slug on `domain`), or the live links of the
    touchpoint or channel by touchpoint name, stage and id. Refused: nothing to print, more than
    `limit`, an unknown link or touchpoint, and a named link that no longer redirects."""
    if selection.links:
        found = _named_links(session, selection.links, domain=domain)
        dead = [link.slug for link in found if not _live(link, now)]
        if dead:
            raise UnprintableLinksError(dead)
        return found
    touchpoint = None
    if selection.touchpoint is not None:
        touchpoint = find_touchpoint(session, selection.touchpoint)
        where = f"Touchpoint '{touchpoint.key}'"
    else:
        where = f"The {selection.channel} channel"
    query = printable_query(touchpoint=touchpoint, channel=selection.channel, now=now)
    found = list(session.scalars(query.limit(limit + 1)).unique())
    if not found:
        raise NothingToPrintError(
            f"{where} has no live link (archived and expired links are not printed).",
            details={"parameter": "touchpoint" if touchpoint else "channel"},
        )
    if len(found) > limit:
        counted = query.order_by(None).with_only_columns(func.count(Link.id))
        raise TooManyCodesError(int(session.scalar(counted) or 0), limit)
    return found


def find_touchpoint(session: Session, key: str) -> Touchpoint:
    """The touchpoint `touchpoint=` names, archived or not; a 404 naming the parameter."""
    touchpoint = session.scalars(select(Touchpoint).where(Touchpoint.key == key)).one_or_none()
    if touchpoint is None:
        raise NotFoundError(
            f"touchpoint: no touchpoint with key '{key}'.", details={"parameter": "touchpoint"}
        )
    return touchpoint


def printable_query(
    *, touchpoint: Touchpoint | None = None, channel: str | None = None, now: datetime
) -> Select[Link]:
    """The live links of `touchpoint` and/or `channel` (of touchpoints not archived), by
    touchpoint name, stage and id."""
    query = (
        select(Link)
        .join(Link.touchpoint)
        .join(Link.stage)
        .where(Link.archived.is_(False))
        .where(or_(Link.expires_at.is_(None), Link.expires_at > now))
        .order_by(Touchpoint.name, Touchpoint.key, Stage.position, Link.id)
    )
    if touchpoint is not None:
        query = query.where(Link.touchpoint_id == touchpoint.id)
    if channel is not None:
        # A retired touchpoint's material is not printed again by channel.
        query = query.where(Touchpoint.channel == channel, Touchpoint.archived.is_(False))
    return query


def _as_id(token: str) -> int | None:
    if token.isascii() and token.isdigit() and len(token) <= 10:
        value = int(token)
        if 0 < value <= MAX_ID:
            return value
    return None


def _named_links(session: Session, tokens: Sequence[str], *, domain: str) -> list[Link]:
    ids = {token: _as_id(token) for token in tokens}
    by_id: dict[int, Link] = {}
    wanted = {i for i in ids.values() if i is not None}
    if wanted:
        by_id = {link.id: link for link in session.scalars(select(Link).where(Link.id.in_(wanted)))}
    # A run of digits that is no link's id may still be a slug.
    slugs = [token for token, i in ids.items() if i not in by_id]
    by_slug: dict[str, Link] = {}
    if slugs:
        keys = [slug_key(slug) for slug in slugs]
        rows = session.scalars(select(Link).where(Link.domain == domain, Link.slug_key.in_(keys)))
        by_slug = {link.slug_key: link for link in rows}
    found: dict[int, Link] = {}
    missing: list[str] = []
    for token, i in ids.items():
        link = by_id.get(i) if i is not None else None
        link = link or by_slug.get(slug_key(token))
        if link is None:
            missing.append(token)
        else:
            found.setdefault(link.id, link)
    if missing:
        raise UnknownLinksError(missing)
    return list(found.values())


def _live(link: Link, now: datetime) -> bool:
    return not link.archived and (link.expires_at is None or link.expires_at > now)
