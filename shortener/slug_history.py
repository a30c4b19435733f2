"""The slugs links gave up. A code printed with a link's old slug keeps leading to the link (and
its clicks count on it), so no other link may take that slug while the link exists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shortener.errors import SlugRetiredError
from shortener.models import Link, SlugHistory
from shortener.slugs import slug_key
from shortener.unit_of_work import link_changed


def check_free(session: Session, domain: str, slug: str, *, link_id: int | None = None) -> None:
    """Refuse `slug` on `domain` when a link other than `link_id` gave it up."""
    owner = session.scalar(
        select(SlugHistory.link_id).where(
            SlugHistory.domain == domain, SlugHistory.slug_key == slug_key(slug)
        )
    )
    if owner is not None and owner != link_id:
        raise SlugRetiredError(slug, domain, owner)


def renamed(session: Session, link: Link, old_slug: str, *, now: datetime) -> None:
    """Keep `old_slug` leading to `link`, now that it has another; a slug it takes back is
    its own again."""
    session.execute(
        delete(SlugHistory).where(
            SlugHistory.link_id == link.id,
            SlugHistory.domain == link.domain,
            SlugHistory.slug_key == link.slug_key,
        )
    )
    if slug_key(old_slug) != link.slug_key:  # not a change of letter case alone
        session.add(SlugHistory(
            domain=link.domain, slug=old_slug, slug_key=slug_key(old_slug), link_id=link.id,
            retired_at=now,
        ))
        session.flush()


def links_changed(session: Session, links: list[Link]) -> None:
    """Make every process forget the cached targets of `links`, under their old slugs too."""
    for link in links:
        link_changed(session, link.domain, link.slug)
    ids = [link.id for link in links if link.id is not None]
    for start in range(0, len(ids), 500):
        for domain, slug in session.execute(
            select(SlugHistory.domain, SlugHistory.slug)
            .where(SlugHistory.link_id.in_(ids[start : start + 500]))
        ):
            link_changed(session, domain, slug)


def link_of_old_slug(session: Session, domain: str, slug: str) -> Link | None:
    return session.scalar(
        select(Link)
        .join(SlugHistory, SlugHistory.link_id == Link.id)
        .where(SlugHistory.domain == domain, SlugHistory.slug_key == slug_key(slug))
    )


def old_slugs(session: Session, link_id: int) -> list[SlugHistory]:
    return list(session.scalars(
        select(SlugHistory).where(SlugHistory.link_id == link_id).order_by(SlugHistory.retired_at)
    ))


def taken(session: Session, domain: str, keys: list[str]) -> dict[str, int]:
    """The slug keys among `keys` that links of `domain` gave up, with the link of each."""
    return dict(session.execute(
        select(SlugHistory.slug_key, SlugHistory.link_id).where(
            SlugHistory.domain == domain, SlugHistory.slug_key.in_(keys)
        )
    ).all())
