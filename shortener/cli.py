"""`touchlink keys|users|links|touchpoints|stages|qr …`: the link side's commands."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.orm import Session

from shortener import keys, links, stages, touchpoints, users
from shortener.db import utcnow
from shortener.errors import DomainError
from shortener.links import scan_url, short_url
from shortener.models import USER_ROLES, Channel, Link, Role
from shortener.print_logo import Logo
from shortener.qr import QROptions, render_checked
from shortener.runtime import runtime
from shortener.unit_of_work import transaction

keys_cli = AppGroup("keys", help="Create, list and revoke API keys.")
links_cli = AppGroup("links", help="Create, list, show, edit and archive short links.")
touchpoints_cli = AppGroup("touchpoints", help="Create and list touchpoints.")
stages_cli = AppGroup("stages", help="Show the journey's stages.")
users_cli = AppGroup("users", help="Create and list the people who sign in to the pages.")


@contextmanager
def reading() -> Iterator[Session]:
    """A session for a command that only reads; a domain error ends it with a clear message."""
    try:
        with runtime().sessions() as session:
            yield session
    except DomainError as exc:
        raise click.ClickException(exc.message) from None


@contextmanager
def writing() -> Iterator[Session]:
    """The command's unit of work, committed at the end of the block."""
    try:
        with transaction(runtime().sessions) as session:
            yield session
    except DomainError as exc:
        raise click.ClickException(exc.message) from None


@keys_cli.command("create")
@click.option("--name", required=True, help="Who or what uses the key.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
def create_key(name: str, role: str) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    with writing() as session:
        key, raw = keys.create_key(session, name=name, role=Role(role))
    click.echo(raw)
    click.echo(
        f"Created {role} key {key.prefix}… for {key.name!r}. "
        "Keep it now: it is not shown again.",
        err=True,
    )


@keys_cli.command("list")
def list_keys() -> None:
    with reading() as session:
        for key in keys.list_keys(session):
            state = "revoked" if key.revoked_at else "active"
            used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
            click.echo(
                f"{key.id:>4}  {key.prefix}…  {key.role:<8}  {state:<7}  "
                f"used {used:<16}  {key.name}"
            )


@keys_cli.command("revoke")
@click.argument("key")
def revoke_key(key: str) -> None:
    """Revoke KEY, given by its id or its prefix."""
    with writing() as session:
        revoked = keys.revoke_key(session, key, now=utcnow())
    click.echo(f"Revoked key {revoked.id} ({revoked.prefix}…, {revoked.name}).")


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        # The first line, as typed: a password may start or end with spaces.
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_cli.command("create")
@click.option("--email", required=True, help="The address they sign in with.")
@click.option("--role", type=click.Choice([r.value for r in USER_ROLES]), required=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)
def create_user(email: str, role: str, password_stdin: bool) -> None:
    """Create a user who signs in to the pages; the password is asked for twice."""
    password = _new_password(password_stdin)
    with writing() as session:
        user = users.create_user(session, email=email, role=Role(role), password=password)
    click.echo(f"Created {user.role} user {user.email}.")


@users_cli.command("list")
def list_users() -> None:
    with reading() as session:
        for user in users.list_users(session):
            seen = (
                user.last_signed_in_at.strftime("%Y-%m-%d %H:%M")
                if user.last_signed_in_at
                else "never"
            )
            click.echo(f"{user.id:>4}  {user.role:<8}  signed in {seen:<16}  {user.email}")


@users_cli.command("set-password")
@click.option("--email", required=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)
def set_password(email: str, password_stdin: bool) -> None:
    """Give a user a new password; their open sessions end."""
    password = _new_password(password_stdin)
    with writing() as session:
        user = users.set_password(session, email, password)
    click.echo(f"Changed the password of {user.email}.")


@links_cli.command("create")
@click.argument("url")
@click.option("--touchpoint", required=True, help="Touchpoint key, e.g. store-flyer-paris.")
@click.option("--stage", required=True, help="Stage key, e.g. awareness.")
@click.option("--slug", help="A custom slug; a random one otherwise.")
@click.option("--campaign")
@click.option("--title")
@click.option("--status", "redirect_status", type=click.Choice(["301", "302", "307", "308"]))
@click.option("--no-utm", is_flag=True, help="Do not append utm_* parameters.")
def create_link(
    url: str,
    touchpoint: str,
    stage: str,
    slug: str | None,
    campaign: str | None,
    title: str | None,
    redirect_status: str | None,
    no_utm: bool,
) -> None:
    """Create a short link to URL and print its short URL."""
    rt = runtime()
    data: dict[str, object] = {"url": url, "touchpoint": touchpoint, "stage": stage}
    for name, value in (("slug", slug), ("campaign", campaign), ("title", title)):
        if value is not None:
            data[name] = value
    if redirect_status:
        data["redirect_status"] = int(redirect_status)
    if no_utm:
        data["utm"] = False
    with writing() as session:
        link = links.create_link(
            session,
            links.LinkInput.from_json(data),
            own_hosts=rt.own_hosts(),
            default_status=rt.settings.default_redirect_status,
        )
    click.echo(short_url(link, scheme=rt.settings.scheme))


@links_cli.command("list")
@click.option("--touchpoint")
@click.option("--stage")
@click.option("--campaign")
@click.option("--limit", type=click.IntRange(1, links.MAX_PAGE), default=50, show_default=True)
def list_links(touchpoint: str | None, stage: str | None, campaign: str | None, limit: int) -> None:
    with reading() as session:
        where = links.LinkFilter.from_args(
            {"touchpoint": touchpoint or "", "stage": stage or "", "campaign": campaign or ""}
        )
        for link in links.list_links(session, where, limit=limit).items:
            short = short_url(link, scheme=runtime().settings.scheme)
            click.echo(
                f"{link.id:>5}  {short:<40}  {link.touchpoint.key:<24}  "
                f"{link.stage.key:<14}  {link.destination}"
            )


def _find_link(session: Session, slug: str) -> Link:
    return links.find_link_by_slug(session, runtime().settings.short_host, slug)


def _echo_link(link: Link) -> None:
    scheme = runtime().settings.scheme
    state = "archived" if link.archived else "live"
    if not link.archived and links.is_expired(link, utcnow()):
        state = "expired"
    survey = f"{link.survey_kind} then {link.survey_then}" if link.survey_kind else "none"
    rows = (
        ("short URL", short_url(link, scheme=scheme)),
        ("id", str(link.id)),
        ("state", state),
        ("destination", link.destination),
        ("touchpoint", link.touchpoint.key),
        ("stage", link.stage.key),
        ("campaign", link.campaign or "-"),
        ("title", link.title or "-"),
        ("redirect", str(link.redirect_status)),
        ("utm", "on" if link.utm else "off"),
        ("conversions", "tracked" if link.track_conversions else "not tracked"),
        ("survey", survey),
        ("goes live", link.starts_at.isoformat() if link.starts_at else "at once"),
        ("expires at", link.expires_at.isoformat() if link.expires_at else "never"),
        ("fallback", link.fallback_url or "-"),
        ("created at", link.created_at.isoformat()),
        ("QR code", scan_url(link, scheme=scheme)),
    )
    for name, value in rows:
        click.echo(f"{name + ':':<13} {value}")


@links_cli.command("show")
@click.argument("slug")
def show_link(slug: str) -> None:
    """Show the link SLUG: where it goes, its touchpoint, stage and settings."""
    with reading() as session:
        _echo_link(_find_link(session, slug))


@links_cli.command("edit")
@click.argument("slug")
@click.option("--url", help="A new destination.")
@click.option("--touchpoint", help="Another touchpoint's key.")
@click.option("--stage", help="Another stage's key.")
@click.option("--slug", "new_slug", help="A new slug (the old one keeps leading here).")
@click.option("--campaign", help='A campaign; "" takes it off.')
@click.option("--title", help='A title; "" takes it off.')
@click.option("--expires-at", help='An ISO 8601 time (UTC without an offset); "" never.')
@click.option("--starts-at", help='Go-live, ISO 8601: clicks before it are tests; "" at once.')
@click.option("--fallback-url", help='Where it sends customers once retired; "" none.')
@click.option("--status", "redirect_status", type=click.Choice(["301", "302", "307", "308"]))
@click.option("--utm/--no-utm", default=None, help="Append utm_* parameters, or not.")
@click.option("--track-conversions/--no-track-conversions", default=None,
              help="Hand the destination tl_click, or not.")
def edit_link(
    slug: str,
    url: str | None,
    touchpoint: str | None,
    stage: str | None,
    new_slug: str | None,
    campaign: str | None,
    title: str | None,
    expires_at: str | None,
    starts_at: str | None,
    fallback_url: str | None,
    redirect_status: str | None,
    utm: bool | None,
    track_conversions: bool | None,
) -> None:
    """Change the link SLUG: only the options given, with the rules of the API's PATCH."""
    given = {
        "url": url, "touchpoint": touchpoint, "stage": stage, "slug": new_slug,
        "redirect_status": int(redirect_status) if redirect_status else None,
        "utm": utm, "track_conversions": track_conversions,
    }
    data: dict[str, object] = {name: value for name, value in given.items() if value is not None}
    for name, raw in (("campaign", campaign), ("title", title), ("expires_at", expires_at),
                      ("starts_at", starts_at), ("fallback_url", fallback_url)):
        if raw is not None:
            data[name] = raw if raw.strip() else None  # blank takes it off
    if not data:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    with writing() as session:
        link = links.update_link(
            session,
            _find_link(session, slug).id,
            links.LinkInput.from_json(data, partial=True),
            own_hosts=runtime().own_hosts(),
            now=utcnow(),
        )
        _echo_link(link)


@links_cli.command("archive")
@click.argument("slug")
def archive_link(slug: str) -> None:
    """Archive the link SLUG: it answers 410 Gone until restored."""
    with writing() as session:
        link = links.archive_link(session, _find_link(session, slug).id, now=utcnow())
        short = short_url(link, scheme=runtime().settings.scheme)
    click.echo(f"Archived {short}: it answers 410 Gone.")


@links_cli.command("restore")
@click.argument("slug")
def restore_link(slug: str) -> None:
    """Restore the archived link SLUG: it redirects again."""
    with writing() as session:
        link = links.update_link(
            session,
            _find_link(session, slug).id,
            links.LinkInput.from_json({"archived": False}, partial=True),
            own_hosts=runtime().own_hosts(),
            now=utcnow(),
        )
        short = short_url(link, scheme=runtime().settings.scheme)
    click.echo(f"Restored {short}: it redirects again.")


@touchpoints_cli.command("create")
@click.argument("key")
@click.option("--name", required=True)
@click.option("--channel", type=click.Choice([c.value for c in Channel]), required=True)
@click.option("--kind")
@click.option("--exposure", type=int, help="How many people it reached (flyers printed, …).")
def create_touchpoint(
    key: str, name: str, channel: str, kind: str | None, exposure: int | None
) -> None:
    data = {"key": key, "name": name, "channel": channel, "kind": kind, "exposure": exposure}
    with writing() as session:
        touchpoints.create_touchpoint(
            session,
            touchpoints.TouchpointInput.from_json(data),
            today=runtime().settings.today(utcnow()),
        )
    click.echo(f"Created touchpoint {key}.")


@touchpoints_cli.command("list")
def list_touchpoints() -> None:
    with reading() as session:
        for tp in touchpoints.list_touchpoints(session):
            click.echo(f"{tp.key:<28}  {tp.channel:<9}  {tp.kind or '':<12}  {tp.name}")


@stages_cli.command("list")
def list_stages() -> None:
    with reading() as session:
        for stage in stages.list_stages(session):
            click.echo(f"{stage.position:>2}. {stage.key:<18} {stage.name}")


@click.command("qr")
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FILE.svg (vector, for print) or FILE.png.")
@click.option("--size", default="1024", show_default=True, help="Pixels, margin included.")
@click.option("--margin", default="4", show_default=True, help="Quiet zone, in modules.")
@click.option("--ecc", default="M", show_default=True, help="Error correction: L, M, Q or H.")
@click.option("--fg", default="#000000", show_default=True)
@click.option("--bg", default="#ffffff", show_default=True)
@click.option("--caption", default="", help="Text under the code, at most 80 characters.")
@click.option("--logo", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A PNG or SVG of at most 1 MiB for the code's centre (error correction H).")
@click.option("--logo-size", default="30", show_default=True,
              help="The logo's width, in percent of the code's (10 to 50).")
@with_appcontext
def qr_command(
    slug: str, output: Path, size: str, margin: str, ecc: str, fg: str, bg: str, caption: str,
    logo: Path | None, logo_size: str,
) -> None:
    """Write the QR code of the link SLUG to a file."""
    rt = runtime()
    suffix = output.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise click.BadParameter("the file name must end in .svg or .png", param_hint="--output")
    with reading() as session:
        args = {"size": size, "margin": margin, "ecc": ecc, "fg": fg, "bg": bg,
                "caption": caption, "logo_size": logo_size}
        options = QROptions.from_args(args)
        picture = Logo.from_upload(logo.read_bytes()) if logo is not None else None
        link = links.find_link_by_slug(session, rt.settings.short_host, slug)
        data = scan_url(link, scheme=rt.settings.scheme)
        image = render_checked(data, options, fmt=suffix[1:], logo=picture)
    try:
        output.write_bytes(image)
    except OSError as exc:
        raise click.FileError(str(output), hint=exc.strerror or str(exc)) from None
    click.echo(f"Wrote {output}: {data}")


def init_app(app: Flask) -> None:
    for command in (keys_cli, users_cli, links_cli, touchpoints_cli, stages_cli, qr_command):
        app.cli.add_command(command)
