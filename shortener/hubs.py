"""Hubs: link-in-bio pages. A hub belongs to a touchpoint (an Instagram bio) and has a short link
of that touchpoint whose short URL shows the hub's page (`shortener.hubs_public`), and ordered
buttons, each a tracked link of the same touchpoint at a stage of its own: a view of the page
is a click of the hub's link, and a tap on a button a click of the button's.

Buttons keep their link, and so their clicks, when a new list keeps them (by id, or unchanged:
same destination and stage); a button taken off the list has its link archived, never deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from typing_extensions import TypedDict

from shortener import links, schemas, slug_history
from shortener.db import add_unique
from shortener.domains import link_domain
from shortener.errors import InvalidFieldError, NotFoundError, SlugTakenError
from shortener.hubs_avatar import Avatar, extension
from shortener.hubs_input import MAX_BUTTONS, ButtonInput, HubInput, within
from shortener.links import LinkInput, LinkOut, link_json, short_url
from shortener.models import MAX_ID, Hub, HubButton, Link, Stage, Touchpoint
from shortener.runtime import LinkRuntime
from shortener.slugs import random_slug, validate_slug
from shortener.stages import find_stage, list_stages
from shortener.touchpoints import find_touchpoint
from shortener.unit_of_work import link_changed
from shortener.urls import validate_destination

RANDOM_SLUG_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class LinkRules:
    """How the links of hubs are made: with which redirect status, never to the shortener's
    own hosts; `home` is where a hub's link redirects wherever its page is not shown and the
    hub has no button yet (the first button's destination otherwise). A hub's link goes on the
    default domain, its buttons' on the hub's."""

    own_hosts: Collection[str]
    default_status: int
    home: str
    scheme: str

    @classmethod
    def of(cls, rt: LinkRuntime) -> LinkRules:
        settings = rt.settings
        return cls(
            own_hosts=rt.own_hosts(),
            default_status=settings.default_redirect_status,
            home=f"{settings.base_url.rstrip('/')}/",
            scheme=settings.scheme,
        )


# --- hubs ---------------------------------------------------------------------------------------


def create_hub(session: Session, data: HubInput, *, rules: LinkRules, now: datetime) -> Hub:
    """A hub with its link (a custom slug taken is a 409) and the buttons given."""
    values = data.values
    touchpoint = find_touchpoint(session, values["touchpoint"])
    stage = _hub_stage(session, values.get("stage"))
    link = Link(
        domain=link_domain(session, None),
        destination=rules.home,
        touchpoint=touchpoint,
        stage=stage,
        title=_hub_link_title(values["title"]),
        redirect_status=rules.default_status,
        utm=False,
    )
    _add_link(session, link, values.get("slug"))
    hub = Hub(
        touchpoint=touchpoint,
        link=link,
        title=values["title"],
        description=values.get("description"),
    )
    avatar = values.get("avatar")
    if avatar is not None:
        _set_avatar(hub, avatar)
    session.add(hub)
    session.flush()
    buttons = values.get("buttons")
    if buttons:
        set_buttons(session, hub, buttons, rules=rules, now=now)
    return hub


def _hub_stage(session: Session, key: str | None) -> Stage:
    if key is not None:
        return find_stage(session, key)
    stages = list_stages(session)
    if not stages:
        raise InvalidFieldError("stage", "is required: the workspace has no stages yet")
    return stages[0]


def _add_link(session: Session, link: Link, slug: str | None) -> None:
    if slug is not None:
        slug_history.check_free(session, link.domain, validate_slug(slug))
        link.slug = validate_slug(slug)
        add_unique(session, link, lambda: SlugTakenError(link.slug, link.domain))
    else:
        for _ in range(RANDOM_SLUG_ATTEMPTS):
            link.slug = random_slug()
            try:
                add_unique(session, link, lambda: SlugTakenError(link.slug, link.domain))
                break
            except SlugTakenError:
                continue  # the savepoint let go of `link`: draw again
        else:
            raise SlugTakenError(link.slug, link.domain)
    link_changed(session, link.domain, link.slug)  # a cached "not found" may linger


def get_hub(session: Session, hub_id: int) -> Hub:
    hub = session.get(Hub, hub_id) if 0 < hub_id <= MAX_ID else None
    if hub is None:
        raise NotFoundError(f"No hub with id {hub_id}.")
    return hub


def find_hub_of_link(session: Session, link_id: int) -> Hub | None:
    """The hub whose own link is `link_id`, its buttons loaded."""
    return session.scalars(
        select(Hub).where(Hub.link_id == link_id).options(selectinload(Hub.buttons))
    ).one_or_none()


def list_hubs(
    session: Session, *, touchpoint: str | None = None, include_archived: bool = False
) -> Sequence[Hub]:
    query = select(Hub).options(selectinload(Hub.buttons)).order_by(Hub.id.desc())
    if touchpoint is not None:
        query = query.join(Hub.touchpoint).where(Touchpoint.key == touchpoint)
    if not include_archived:
        query = query.where(Hub.archived.is_(False))
    return session.scalars(query).unique().all()


def update_hub(
    session: Session, hub_id: int, data: HubInput, *, rules: LinkRules, now: datetime
) -> Hub:
    """Change the fields given; `archived` archives or restores the hub with all its links."""
    hub = get_hub(session, hub_id)
    values = data.values
    if "stage" in values:
        hub.link.stage = find_stage(session, values["stage"])
    if "title" in values:
        hub.title = values["title"]
        hub.link.title = _hub_link_title(hub.title)
    if "description" in values:
        hub.description = values["description"]
    if "avatar" in values:
        _set_avatar(hub, values["avatar"])
    if "archived" in values and values["archived"] != hub.archived:
        _set_archived(session, hub, archived=values["archived"], now=now)
    hub.updated_at = now  # the page changes even when only a button's link does
    _page_changed(session, hub)
    session.flush()
    return hub


def archive_hub(session: Session, hub_id: int, *, now: datetime) -> Hub:
    """Archive the hub: its short URL and its buttons' answer 410; figures stay."""
    hub = get_hub(session, hub_id)
    if not hub.archived:
        _set_archived(session, hub, archived=True, now=now)
        session.flush()
    return hub


def _set_archived(session: Session, hub: Hub, *, archived: bool, now: datetime) -> None:
    hub.archived, hub.archived_at = archived, now if archived else None
    links = [hub.link, *(button.link for button in hub.buttons)]
    for link in links:
        link.archived, link.archived_at = archived, now if archived else None
    slug_history.links_changed(session, links)


def _set_avatar(hub: Hub, avatar: Avatar | None) -> None:
    if avatar is None:
        hub.avatar = hub.avatar_type = hub.avatar_digest = None
    else:
        hub.avatar, hub.avatar_type, hub.avatar_digest = (
            avatar.data, avatar.content_type, avatar.digest
        )


def _hub_link_title(title: str) -> str:
    return f"Hub: {title}"


def _page_changed(session: Session, hub: Hub) -> None:
    # The page is cached with its link's target (`shortener.hubs_public`): forgetting the
    # target, in every process, makes each show the page anew.
    link_changed(session, hub.link.domain, hub.link.slug)


# --- buttons ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Checked:
    label: str
    destination: str
    stage: Stage


def _check(
    session: Session, hub: Hub, entry: ButtonInput, rules: LinkRules, field: str
) -> _Checked:
    with within(field):
        try:
            destination = validate_destination(entry.url, own_hosts=rules.own_hosts)
        except InvalidFieldError as exc:
            raise type(exc)("url", exc.message.removeprefix("url: ")) from None
        stage = find_stage(session, entry.stage) if entry.stage is not None else hub.link.stage
    return _Checked(entry.label, destination, stage)


def set_buttons(
    session: Session, hub: Hub, entries: Sequence[ButtonInput], *, rules: LinkRules,
    now: datetime,
) -> Hub:
    """Make `entries` the hub's buttons, in that order. An entry is the button its `id` names,
    or else an unclaimed button with the same destination and stage; a kept button keeps its
    link (a new label, destination or stage changes that link); any other entry gets a new
    link; a button left out has its link archived."""
    if len(entries) > MAX_BUTTONS:
        raise InvalidFieldError(
            "buttons", f"a hub has at most {MAX_BUTTONS} buttons; {len(entries)} were sent"
        )
    checked = [
        _check(session, hub, entry, rules, f"buttons.{i}") for i, entry in enumerate(entries)
    ]
    chosen = _match(hub, entries, checked)
    kept: list[HubButton] = []
    for position, (found, button) in enumerate(zip(checked, chosen, strict=True)):
        if button is None:
            button = HubButton(link=_button_link(session, hub, found, rules), label=found.label)
        else:
            _update_button_link(session, hub, button, found, rules, now)
        button.label, button.position = found.label, position
        kept.append(button)
    for button in hub.buttons:
        if button not in kept:
            links.archive_link(session, button.link_id, now=now)
    hub.buttons = kept  # the buttons left out are deleted; their links stay, archived
    first = kept[0].link.destination if kept else rules.home
    if hub.link.destination != first:
        hub.link.destination = first
    hub.updated_at = now
    _page_changed(session, hub)
    session.flush()
    return hub


def _match(
    hub: Hub, entries: Sequence[ButtonInput], checked: Sequence[_Checked]
) -> list[HubButton | None]:
    existing = {button.id: button for button in hub.buttons}
    claimed: set[int] = set()
    chosen: list[HubButton | None] = []
    for i, entry in enumerate(entries):
        button = None
        if entry.id is not None:
            button = existing.get(entry.id)
            if button is None:
                raise InvalidFieldError(f"buttons.{i}.id", f"this hub has no button {entry.id}")
            if entry.id in claimed:
                raise InvalidFieldError(f"buttons.{i}.id", f"button {entry.id} is listed twice")
            claimed.add(entry.id)
        chosen.append(button)
    for i, found in enumerate(checked):
        if chosen[i] is not None or entries[i].id is not None:
            continue
        same = next(
            (
                button for button in hub.buttons
                if button.id not in claimed
                and button.link.destination == found.destination
                and button.link.stage_id == found.stage.id
            ),
            None,
        )
        if same is not None:
            claimed.add(same.id)
            chosen[i] = same
    return chosen


def _button_link(session: Session, hub: Hub, found: _Checked, rules: LinkRules) -> Link:
    data = LinkInput.from_json(
        {
            "url": found.destination,
            "touchpoint": hub.touchpoint.key,
            "stage": found.stage.key,
            "title": _button_link_title(hub, found.label),
            "domain": hub.link.domain,
        }
    )
    return links.create_link(
        session, data, own_hosts=rules.own_hosts, default_status=rules.default_status
    )


def _update_button_link(
    session: Session, hub: Hub, button: HubButton, found: _Checked, rules: LinkRules,
    now: datetime,
) -> None:
    link = button.link
    link.title = _button_link_title(hub, found.label)
    if link.destination != found.destination or link.stage_id != found.stage.id:
        data = LinkInput.from_json(
            {"url": found.destination, "stage": found.stage.key}, partial=True
        )
        links.update_link(session, link.id, data, own_hosts=rules.own_hosts, now=now)


def _button_link_title(hub: Hub, label: str) -> str:
    return f"Hub {hub.title}: {label}"[:300]


def current_buttons(hub: Hub) -> list[ButtonInput]:
    """The hub's buttons as a list `set_buttons` keeps as they are."""
    return [
        ButtonInput(button.label, button.link.destination, button.link.stage.key, button.id)
        for button in hub.buttons
    ]


def _button_index(hub: Hub, button_id: int) -> int:
    for index, button in enumerate(hub.buttons):
        if button.id == button_id:
            return index
    raise NotFoundError(f"The hub {hub.id} has no button {button_id}.")


def add_button(
    session: Session, hub: Hub, entry: ButtonInput, *, rules: LinkRules, now: datetime
) -> HubButton:
    """Add a button at the end; its fields are named without a list position when refused."""
    if len(hub.buttons) >= MAX_BUTTONS:
        raise InvalidFieldError("buttons", f"a hub has at most {MAX_BUTTONS} buttons")
    _check(session, hub, entry, rules, "")
    set_buttons(session, hub, [*current_buttons(hub), entry], rules=rules, now=now)
    return hub.buttons[-1]


def update_button(
    session: Session, hub: Hub, button_id: int, entry: ButtonInput, *, rules: LinkRules,
    now: datetime,
) -> Hub:
    index = _button_index(hub, button_id)
    _check(session, hub, entry, rules, "")
    entries = current_buttons(hub)
    entries[index] = ButtonInput(entry.label, entry.url, entry.stage, button_id)
    return set_buttons(session, hub, entries, rules=rules, now=now)


def move_button(
    session: Session, hub: Hub, button_id: int, offset: int, *, rules: LinkRules, now: datetime
) -> Hub:
    """Move a button `offset` places (-1: up); past either end it stays where it is."""
    index = _button_index(hub, button_id)
    entries = current_buttons(hub)
    target = min(max(index + offset, 0), len(entries) - 1)
    entries.insert(target, entries.pop(index))
    return set_buttons(session, hub, entries, rules=rules, now=now)


def remove_button(
    session: Session, hub: Hub, button_id: int, *, rules: LinkRules, now: datetime
) -> Hub:
    index = _button_index(hub, button_id)
    entries = current_buttons(hub)
    del entries[index]
    return set_buttons(session, hub, entries, rules=rules, now=now)


# --- how a hub is shown -------------------------------------------------------------------------


def avatar_path(hub: Hub) -> str | None:
    """Where the avatar is served (`hubs_public`): its digest in the path, so it may be cached
    for good."""
    if hub.avatar_digest is None or hub.avatar_type is None:
        return None
    return f"/links/hubs/{hub.id}/avatar/{hub.avatar_digest}.{extension(hub.avatar_type)}"


class ButtonOut(TypedDict):
    id: int
    position: int
    label: str
    url: str
    stage: str
    link_id: int
    slug: str
    short_url: str
    archived: bool


class HubOut(TypedDict):
    id: int
    title: str
    description: str | None
    touchpoint: str
    stage: str
    slug: str
    domain: str
    short_url: str
    link: LinkOut
    avatar_url: str | None
    buttons: list[ButtonOut]
    archived: bool
    created_at: schemas.TimeText
    updated_at: schemas.TimeText


def button_json(button: HubButton, *, scheme: str) -> ButtonOut:
    link = button.link
    return {
        "id": button.id,
        "position": button.position,
        "label": button.label,
        "url": link.destination,
        "stage": link.stage.key,
        "link_id": link.id,
        "slug": link.slug,
        "short_url": short_url(link, scheme=scheme),
        "archived": link.archived,
    }


def hub_json(hub: Hub, *, scheme: str) -> HubOut:
    path = avatar_path(hub)
    return {
        "id": hub.id,
        "title": hub.title,
        "description": hub.description,
        "touchpoint": hub.touchpoint.key,
        "stage": hub.link.stage.key,
        "slug": hub.link.slug,
        "domain": hub.link.domain,
        "short_url": short_url(hub.link, scheme=scheme),
        "link": link_json(hub.link, scheme=scheme),
        "avatar_url": f"{scheme}://{hub.link.domain}{path}" if path else None,
        "buttons": [button_json(button, scheme=scheme) for button in hub.buttons],
        "archived": hub.archived,
        "created_at": hub.created_at.isoformat(),
        "updated_at": hub.updated_at.isoformat(),
    }
