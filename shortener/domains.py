"""Short domains: the hosts that serve short links (`go.brand.com`, the base URL's host). Each
serves only its own links; new links go on the default one unless they name another.

A domain's `host` is written in its short URLs (with a port when the service listens on one);
its `hostname` is what a request's Host header is matched against, once lower-cased and stripped
of a trailing dot and the port, so that `GO.Brand.com.:443` finds `go.brand.com`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from typing_extensions import TypedDict

from shortener import schemas
from shortener.db import add_unique
from shortener.errors import ConflictError, InvalidFieldError, NotFoundError, UnknownReferenceError
from shortener.models import Domain, Link
from shortener.unit_of_work import link_changed
from shortener.urls import MAX_URL_LENGTH, normalise_host, split_authority, validate_destination

log = logging.getLogger(__name__)


def hostname_of(host: str) -> str:
    """The form a Host header is matched in; ValueError for no host at all."""
    return normalise_host(host)


def parse_host(text: str) -> str:
    """A domain as a user writes it (`go.brand.com`, `localhost:8080`), in its stored form, or
    InvalidFieldError saying what is wrong."""
    if "://" in text or any(c in text for c in "/?#@ \\"):
        raise InvalidFieldError(
            "host", "must be a host name alone, such as go.example.com (no scheme, no path)."
        )
    try:
        _, port = split_authority(text)
        hostname = normalise_host(text)
    except ValueError as error:
        raise InvalidFieldError("host", f"is not a host name: {error}.") from error
    if "." not in hostname and hostname != "localhost" and not hostname.startswith("["):
        raise InvalidFieldError("host", "must be a full host name such as go.example.com.")
    if port in (None, ""):
        return hostname
    if not 1 <= int(port) <= 65535:
        raise InvalidFieldError("host", "has a port out of range (1 to 65535).")
    return f"{hostname}:{int(port)}"


# Left as sent: `_fallback` checks it as a destination.
Fallback = Annotated[str, schemas.Address(MAX_URL_LENGTH)]


class NewDomain(schemas.Body):
    # At most the column's length; `parse_host` says what else is wrong with it.
    host: Annotated[str, schemas.Line(255)] = Field(
        description="a host name as in short URLs: go.brand.com, localhost:8080"
    )
    default: bool = Field(default=False, description="new links go on it")
    fallback_url: Fallback | None = Field(
        default=None, description="where its unknown slugs go; the not-found page if null"
    )


class DomainChange(schemas.Body):
    """Only the fields given change."""

    default: bool = schemas.optional(
        description="true makes it the default; false is refused while it is"
    )
    fallback_url: Fallback | None = Field(
        default=None, description="where its unknown slugs go; null: the not-found page"
    )


@dataclass(frozen=True, slots=True)
class DomainInput:
    host: str
    default: bool
    fallback_url: str | None

    @classmethod
    def from_json(cls, data: Any, *, own_hosts: Collection[str]) -> DomainInput:
        return cls.of(schemas.validate_body(NewDomain, data), own_hosts=own_hosts)

    @classmethod
    def of(cls, body: NewDomain, *, own_hosts: Collection[str]) -> DomainInput:
        return cls(parse_host(body.host), body.default, _fallback(body.fallback_url, own_hosts))


def _fallback(url: str | None, own_hosts: Collection[str]) -> str | None:
    if url is None:
        return None
    try:
        return validate_destination(url, own_hosts=own_hosts)
    except InvalidFieldError as error:
        raise InvalidFieldError("fallback_url", error.message.split(": ", 1)[-1]) from error


def list_domains(session: Session) -> list[Domain]:
    return list(session.scalars(select(Domain).order_by(Domain.is_default.desc(), Domain.host)))


def find_domain(session: Session, host: str) -> Domain:
    try:
        hostname = hostname_of(host)
    except ValueError:
        hostname = ""
    found = session.scalar(select(Domain).where(Domain.hostname == hostname))
    if found is None:
        raise NotFoundError(f"No short domain {host!r}.", details={"host": host})
    return found


def link_counts(session: Session) -> dict[str, int]:
    """How many links, archived ones included (they too keep a domain), each domain has."""
    rows = session.execute(select(Link.domain, func.count()).group_by(Link.domain))
    return {host: count for host, count in rows}


def link_domain(session: Session, host: str | None) -> str:
    """The host a new link goes on: the domain it names (422 if none of ours), else the
    default one."""
    if host is None:
        return default_host(session)
    try:
        return find_domain(session, host).host
    except NotFoundError:
        raise UnknownReferenceError(
            "domain", f"{host!r} is not one of the short domains (see /api/v1/domains)."
        ) from None


def default_host(session: Session) -> str:
    host = session.scalar(select(Domain.host).where(Domain.is_default))
    if host is None:
        raise NotFoundError("No default short domain: run `touchlink init`.")
    return host


def host_taken(host: str) -> ConflictError:
    return ConflictError(
        f"A short domain with the host {host} exists already.", details={"field": "host"}
    )


def add_domain(session: Session, data: DomainInput) -> Domain:
    hostname = hostname_of(data.host)
    domain = Domain(host=data.host, hostname=hostname, fallback_url=data.fallback_url)
    add_unique(session, domain, lambda: host_taken(data.host))
    if data.default:
        make_default(session, domain)
    return domain


def update_domain(
    session: Session, host: str, data: DomainChange | dict[str, Any], *,
    own_hosts: Collection[str],
) -> Domain:
    """Make a domain the default (`{"default": true}`) or change its fallback URL; `data` is
    the change, or its JSON (as the page sends it)."""
    domain = find_domain(session, host)
    if not isinstance(data, DomainChange):
        data = schemas.validate_body(DomainChange, data)
    given = data.given()
    if given.get("default") is False and domain.is_default:
        raise ConflictError(
            "Make another domain the default instead.", details={"field": "default"}
        )
    if given.get("default") is True:
        make_default(session, domain)
    if "fallback_url" in given:
        domain.fallback_url = _fallback(given["fallback_url"], own_hosts)
    session.flush()
    return domain


def make_default(session: Session, domain: Domain) -> None:
    session.execute(update(Domain).where(Domain.id != domain.id).values(is_default=False))
    domain.is_default = True
    session.flush()


def remove_domain(session: Session, host: str) -> None:
    """Remove a domain that no link uses; never the default one."""
    domain = find_domain(session, host)
    if domain.is_default:
        raise ConflictError(
            f"{domain.host} is the default short domain: make another one the default first."
        )
    used = session.scalar(select(func.count()).where(Link.domain == domain.host))
    if used:
        raise ConflictError(
            f"{used:,} links use {domain.host}: printed codes carry it. Move them first "
            f"(touchlink domains move {domain.host} NEW-HOST).",
            details={"links": used},
        )
    session.delete(domain)
    session.flush()


def move_links(session: Session, old: str, new: str) -> int:
    """Put the links of domain `old` on domain `new` (a slug both use refuses it all): how many
    moved. Codes already printed with `old` stop working unless `old` stays a domain."""
    source, target = find_domain(session, old), find_domain(session, new)
    clash = list(session.scalars(
        select(Link.slug).where(Link.domain == source.host).where(
            Link.slug_key.in_(select(Link.slug_key).where(Link.domain == target.host))
        ).order_by(Link.slug).limit(20)
    ))
    if clash:
        raise ConflictError(
            f"These slugs exist on both domains: {', '.join(clash)}.", details={"slugs": clash}
        )
    return _move(session, source.host, target.host)


def _move(session: Session, old_host: str, new_host: str) -> int:
    slugs = list(session.scalars(select(Link.slug).where(Link.domain == old_host)))
    session.execute(update(Link).where(Link.domain == old_host).values(domain=new_host))
    for slug in slugs:
        link_changed(session, old_host, slug)
        link_changed(session, new_host, slug)
    return len(slugs)


def seed(session: Session, base_host: str, branded: Sequence[str]) -> list[str]:
    """Make the base URL's host and TOUCHLINK_SHORT_DOMAINS domains; what changed, in words.

    The base URL's host becomes the default when it is new. A base URL whose port changed keeps
    its domain and its links, under the new port; one whose host changed leaves the links on the
    old domain, still served there, and says how to move them.
    """
    said: list[str] = []
    hostname = hostname_of(base_host)
    found = session.scalar(select(Domain).where(Domain.hostname == hostname))
    if found is not None and found.host != base_host:
        old = found.host
        moved = _move(session, old, base_host)
        found.host = base_host
        said.append(
            f"The short domain {old} is now {base_host}; its {moved:,} links moved with it."
        )
    elif found is None:
        found = Domain(host=base_host, hostname=hostname)
        session.add(found)
        session.flush()
        if (previous := session.scalar(select(Domain).where(Domain.is_default))) is not None:
            left = session.scalar(select(func.count()).where(Link.domain == previous.host)) or 0
            said.append(
                f"New links now go on {base_host}. The {left:,} links on {previous.host} stay "
                f"there (still served); `touchlink domains move {previous.host} {base_host}` "
                "moves them."
            )
        make_default(session, found)
    if session.scalar(select(Domain.id).where(Domain.is_default)) is None:
        make_default(session, found)
    for host in branded:
        if session.scalar(select(Domain.id).where(Domain.hostname == hostname_of(host))) is None:
            session.add(Domain(host=host, hostname=hostname_of(host)))
            said.append(f"Added the short domain {host}.")
    session.flush()
    return said


class DomainOut(TypedDict):
    host: str
    default: bool
    fallback_url: str | None
    base_url: str
    created_at: schemas.TimeText


def domain_json(domain: Domain, *, scheme: str) -> DomainOut:
    return {
        "host": domain.host,
        "default": domain.is_default,
        "fallback_url": domain.fallback_url,
        "base_url": f"{scheme}://{domain.host}",
        "created_at": domain.created_at.isoformat(),
    }


@dataclass(frozen=True, slots=True)
class Served:
    host: str  # the links' `domain`
    fallback_url: str | None


class DomainMap:
    """The domains by the Host a request names, for the redirect: read from SQL again at most
    every `ttl` seconds (a domain added by another process is served within that), and found by
    the raw Host header in a bounded memo, so the hot path normalises each spelling once."""

    MEMO = 1024  # Host spellings remembered (junk Host headers cannot grow it past this)

    def __init__(
        self, sessions: sessionmaker[Session], *, ttl: float, seeds: Sequence[str] = ()
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        # Until SQL first answers, the configured hosts are served.
        self._by_name = {hostname_of(host): Served(host, None) for host in seeds}
        self._memo: dict[str, Served | None] = {}
        self._expires = 0.0

    def find(self, http_host: str) -> Served | None:
        now = time.monotonic()
        if now >= self._expires:
            self._load(now)
        memo = self._memo
        try:
            return memo[http_host]
        except KeyError:
            pass
        try:
            found = self._by_name.get(hostname_of(http_host))
        except ValueError:
            found = None
        if len(memo) < self.MEMO:
            memo[http_host] = found
        return found

    def hostnames(self) -> tuple[str, ...]:
        """The hostnames served: no destination may point back at one of them."""
        if time.monotonic() >= self._expires:
            self._load(time.monotonic())
        return tuple(self._by_name)

    def forget(self) -> None:
        """Read the domains again on the next request (after a change in this process)."""
        self._expires = 0.0

    def _load(self, now: float) -> None:
        self._expires = now + self._ttl
        try:
            with self._sessions() as session:
                rows = session.execute(select(Domain.hostname, Domain.host, Domain.fallback_url))
                by_name = {name: Served(host, fallback) for name, host, fallback in rows}
        except SQLAlchemyError as exc:
            log.warning("short domains not read (%s); serving those known", exc)
            return
        if by_name:
            self._by_name, self._memo = by_name, {}
