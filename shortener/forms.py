"""Forms of the pages: every refusal of the services' rules shown at once next to its field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener import slug_history
from shortener.errors import ConflictError, DomainError, SlugTakenError
from shortener.links import LinkInput, check_expiry, check_window, validate_fallback
from shortener.models import Link, Touchpoint
from shortener.placements import PlacementInput
from shortener.slugs import slug_key, validate_slug
from shortener.stages import find_stage
from shortener.touchpoints import TouchpointInput, find_touchpoint, key_taken
from shortener.unit_of_work import rollback_request
from shortener.urls import validate_destination

T = TypeVar("T")

TOUCHPOINT_LABELS = {
    "name": "Name", "key": "Key", "channel": "Channel", "kind": "Kind", "exposure": "Exposure",
}
PLACEMENT_LABELS = {"count": "People reached", "from": "From", "to": "To", "note": "Note"}
LINK_LABELS = {
    "url": "Destination URL", "touchpoint": "Touchpoint", "stage": "Journey stage", "slug": "Slug",
    "campaign": "Campaign", "title": "Title", "redirect_status": "Redirect",
    "starts_at": "Goes live", "expires_at": "Expires", "fallback_url": "Fallback URL",
    "utm": "UTM parameters", "track_conversions": "Track conversions",
    "survey_kind": "Ask", "survey_then": "After the answer", "survey_question": "Question",
}
# What a refused field is replaced with to read the rest of the form: values the field rules
# accept (the destination, touchpoint and stage are looked up apart, after).
_ACCEPTED = {
    "key": "x", "name": "x", "channel": "digital",
    "url": "https://example.com/", "touchpoint": "x", "stage": "x",
    "count": "1", "from": "2000-01-01",
}
_NOT_KEY = re.compile(r"[^a-z0-9]+")


@dataclass(slots=True)
class Refusals:
    """The messages of a refused form by field (`_form` when a refusal names none)."""

    messages: dict[str, str] = field(default_factory=dict)
    conflicts_only: bool = True

    def add(self, exc: DomainError, *, rename: Callable[[str], str] = str) -> None:
        for name, text in field_errors(exc).items():
            self.messages.setdefault(rename(name), text)
        self.conflicts_only = self.conflicts_only and isinstance(exc, ConflictError)

    @property
    def status(self) -> int:
        """409 when every refusal is a slug or key in use, 422 otherwise."""
        return 409 if self.conflicts_only else 422


def field_errors(exc: DomainError) -> dict[str, str]:
    """A refusal as messages keyed by form field; `_form` when it names no field."""
    name = exc.details.get("field")
    if isinstance(name, str):
        prefix = f"{name}: "
        text = exc.message[len(prefix) :] if exc.message.startswith(prefix) else exc.message
        return {name: text[:1].upper() + text[1:]}
    return {"_form": exc.message}


def read_form(
    parse: Callable[[Mapping[str, str]], T],
    form: Mapping[str, str],
    *,
    rename: Callable[[str], str] = str,
) -> tuple[T | None, Refusals]:
    """What `parse` makes of `form`, with every field it refuses: each refused field is given an
    accepted value and the form read again, so the rules stay those of `parse` alone. The result
    holds the accepted values in place of the refused ones; None if a refusal names no field."""
    trial = {name: form[name] for name in form}
    refusals = Refusals()
    while True:
        try:
            return parse(trial), refusals
        except DomainError as exc:
            before = len(refusals.messages)
            refusals.add(exc, rename=rename)
            name = rename(str(exc.details.get("field", "")))
            if len(refusals.messages) == before or name not in refusals.messages:
                return None, refusals  # nothing left to set aside
            trial[name] = _ACCEPTED.get(name, "")


def _check(refusals: Refusals, check: Callable[[], object]) -> None:
    try:
        check()
    except DomainError as exc:
        refusals.add(exc)


def suggest_key(name: str) -> str:
    """A touchpoint key made of a name: "Store flyer, Lyon" → `store-flyer-lyon` (the same as
    static/touchlink.js suggests while the key is typed)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return _NOT_KEY.sub("-", plain.lower()).strip("-")[:64].rstrip("-")


def with_suggested_key(form: Mapping[str, str]) -> dict[str, str]:
    """A create's form with the key made of the name when it was left blank."""
    values = {name: form[name] for name in form}
    if not values.get("key", "").strip():
        values["key"] = suggest_key(values.get("name", ""))
    return values


def touchpoint_refusals(
    session: Session, form: Mapping[str, str], *, editing: Touchpoint | None
) -> Refusals:
    parsed, refusals = read_form(
        lambda trial: TouchpointInput.from_form(trial, partial=editing is not None), form
    )
    key = parsed.values.get("key") if parsed is not None else None
    if isinstance(key, str) and "key" not in refusals.messages:
        owner = session.scalar(select(Touchpoint.id).where(Touchpoint.key == key))
        if owner is not None and (editing is None or owner != editing.id):
            refusals.add(key_taken(key))
    return refusals


def placement_refusals(form: Mapping[str, str]) -> Refusals:
    return read_form(PlacementInput.from_form, form)[1]


def _survey_field(name: str) -> str:
    """The services name the survey's fields `survey.kind`…; the form, `survey_kind`…"""
    return name.replace("survey.", "survey_")


def link_refusals(
    session: Session,
    form: Mapping[str, str],
    *,
    editing: Link | None,
    domain: str,
    own_hosts: Collection[str],
) -> Refusals:
    """Every rule of a link's create or edit but a race for its slug, which the write checks."""
    parsed, refusals = read_form(
        lambda trial: LinkInput.from_form(trial, editing=editing), form, rename=_survey_field
    )
    if parsed is None:
        return refusals
    values, refused = parsed.values, set(refusals.messages)
    checks: dict[str, Callable[[], object]] = {
        "url": lambda: validate_destination(values["url"], own_hosts=own_hosts),
        "touchpoint": lambda: find_touchpoint(session, values["touchpoint"]),
        "stage": lambda: find_stage(session, values["stage"]),
        "slug": lambda: _slug_free(session, validate_slug(values["slug"]), domain, editing),
        "fallback_url": lambda: validate_fallback(values["fallback_url"], own_hosts),
    }
    starts_at = values.get("starts_at", editing.starts_at if editing else None)
    expires_at = values.get("expires_at", editing.expires_at if editing else None)

    def window() -> None:
        if editing is None or expires_at != editing.expires_at:
            check_expiry(expires_at, datetime.now(UTC))
        check_window(starts_at, expires_at)

    checks["expires_at"] = window
    for name, check in checks.items():
        if name in values and name not in refused:
            _check(refusals, check)
    return refusals


def _slug_free(session: Session, slug: str, domain: str, editing: Link | None) -> None:
    owner = session.scalar(
        select(Link.id).where(Link.domain == domain, Link.slug_key == slug_key(slug))
    )
    if owner is not None and (editing is None or owner != editing.id):
        raise SlugTakenError(slug, domain)
    slug_history.check_free(session, domain, slug, link_id=editing.id if editing else None)


def submit(
    action: Callable[[], Any],
    show_form: Callable[[dict[str, str]], str],
    refusals: Refusals | None = None,
) -> Any:
    """The form again with every refusal when `refusals` has any; otherwise what `action` answers,
    or, if the services still refuse (a slug taken meanwhile), the form with their message (422,
    or 409 for a slug or key in use), after undoing anything the refused action did."""
    if refusals is not None and refusals.messages:
        return show_form(refusals.messages), refusals.status
    try:
        return action()
    except DomainError as exc:
        rollback_request()
        return show_form(field_errors(exc)), exc.status
