"""`touchlink hubs create|list|show|add-button`: hubs from the command line."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from shortener import hubs
from shortener.cli import reading, writing
from shortener.db import utcnow
from shortener.errors import DomainError
from shortener.hubs import LinkRules
from shortener.hubs_avatar import Avatar
from shortener.hubs_input import ButtonInput, HubInput
from shortener.links import short_url
from shortener.runtime import runtime

hubs_cli = AppGroup("hubs", help="Link-in-bio hubs: a page of buttons at one short URL.")


@hubs_cli.command("create")
@click.argument("touchpoint")
@click.option("--title", required=True, help="The page's title.")
@click.option("--description", help="A line under the title.")
@click.option("--stage", help="The stage views of the page count at (the first one otherwise).")
@click.option("--slug", help="A custom slug; a random one otherwise.")
@click.option("--avatar", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A PNG, JPEG or WebP of at most 256 KiB.")
def create_hub(
    touchpoint: str, title: str, description: str | None, stage: str | None, slug: str | None,
    avatar: Path | None,
) -> None:
    """Create a hub at TOUCHPOINT and print its id and short URL."""
    rt = runtime()
    data: dict[str, object] = {"touchpoint": touchpoint, "title": title}
    for name, value in (("description", description), ("stage", stage), ("slug", slug)):
        if value is not None:
            data[name] = value
    with writing() as session:
        hub_input = HubInput.from_json(data)
        if avatar is not None:
            hub_input.values["avatar"] = _avatar(avatar)
        hub = hubs.create_hub(session, hub_input, rules=LinkRules.of(rt), now=utcnow())
    click.echo(f"{hub.id}  {short_url(hub.link, scheme=rt.settings.scheme)}")


def _avatar(path: Path) -> Avatar:
    try:
        return Avatar.from_upload(path.read_bytes())
    except DomainError as exc:
        raise click.BadParameter(
            exc.message.removeprefix("avatar: "), param_hint="--avatar"
        ) from None


@hubs_cli.command("list")
@click.option("--touchpoint", help="Only the hubs of this touchpoint.")
@click.option("--archived", is_flag=True, help="Include archived hubs.")
def list_hubs(touchpoint: str | None, archived: bool) -> None:
    scheme = runtime().settings.scheme
    with reading() as session:
        for hub in hubs.list_hubs(session, touchpoint=touchpoint, include_archived=archived):
            state = "  archived" if hub.archived else ""
            click.echo(
                f"{hub.id:>4}  {short_url(hub.link, scheme=scheme):<36}  "
                f"{hub.touchpoint.key:<24}  {len(hub.buttons):>2} buttons  {hub.title}{state}"
            )


@hubs_cli.command("show")
@click.argument("hub_id", type=int)
def show_hub(hub_id: int) -> None:
    """The hub HUB_ID and its buttons, in order."""
    scheme = runtime().settings.scheme
    with reading() as session:
        hub = hubs.get_hub(session, hub_id)
        click.echo(f"{hub.title}{'  (archived)' if hub.archived else ''}")
        click.echo(f"  {short_url(hub.link, scheme=scheme)}  touchpoint {hub.touchpoint.key}, "
                   f"stage {hub.link.stage.key}")
        if hub.description:
            click.echo(f"  {hub.description}")
        for number, button in enumerate(hub.buttons, start=1):
            link = button.link
            click.echo(
                f"{number:>3}. {button.label}  [{link.stage.key}]  "
                f"{short_url(link, scheme=scheme)} → {link.destination}  (button {button.id})"
            )


@hubs_cli.command("add-button")
@click.argument("hub_id", type=int)
@click.option("--label", required=True)
@click.option("--url", required=True, help="Where the button goes.")
@click.option("--stage", help="Its journey stage (the hub's otherwise).")
def add_button(hub_id: int, label: str, url: str, stage: str | None) -> None:
    """Add a button at the end of the hub HUB_ID and print its short URL."""
    rt = runtime()
    data: dict[str, object] = {"label": label, "url": url}
    if stage is not None:
        data["stage"] = stage
    with writing() as session:
        hub = hubs.get_hub(session, hub_id)
        button = hubs.add_button(
            session, hub, ButtonInput.from_json(data), rules=LinkRules.of(rt),
            now=utcnow(),
        )
        shown = short_url(button.link, scheme=rt.settings.scheme)
    click.echo(shown)


def init_app(app: Flask) -> None:
    app.cli.add_command(hubs_cli)
