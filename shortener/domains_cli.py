"""`touchlink domains add|list|default|move|remove`: the short domains."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from shortener import domains
from shortener.cli import reading, writing
from shortener.runtime import runtime

domains_cli = AppGroup("domains", help="The short domains that serve links (one the default).")


@domains_cli.command("list")
def list_domains() -> None:
    """Each domain, the default first, with its fallback URL for unknown slugs."""
    with reading() as session:
        for domain in domains.list_domains(session):
            mark = "default" if domain.is_default else ""
            click.echo(f"{domain.host:40} {mark:8} {domain.fallback_url or ''}".rstrip())


@domains_cli.command("add")
@click.argument("host")
@click.option("--default", "make_default", is_flag=True, help="New links go on it.")
@click.option("--fallback", help="Where its unknown slugs go (else a 404 page).")
def add_domain(host: str, make_default: bool, fallback: str | None) -> None:
    """Serve short links on HOST (its DNS must point at this service)."""
    own_hosts = runtime().own_hosts()
    sent = {"host": host, "default": make_default, "fallback_url": fallback}
    with writing() as session:
        data = domains.DomainInput.from_json(sent, own_hosts=own_hosts)
        domain = domains.add_domain(session, data)
        click.echo(f"Added {domain.host}{' (the default)' if domain.is_default else ''}.")


@domains_cli.command("default")
@click.argument("host")
def make_default(host: str) -> None:
    """Make HOST the domain new links go on."""
    with writing() as session:
        domain = domains.find_domain(session, host)
        domains.make_default(session, domain)
        click.echo(f"New links go on {domain.host}.")


@domains_cli.command("move")
@click.argument("old")
@click.argument("new")
def move_links(old: str, new: str) -> None:
    """Put every link of OLD on NEW (codes printed with OLD work only while it stays a domain)."""
    with writing() as session:
        moved = domains.move_links(session, old, new)
    click.echo(f"Moved {moved:,} links from {old} to {new}.")


@domains_cli.command("remove")
@click.argument("host")
def remove_domain(host: str) -> None:
    """Stop serving HOST; refused while links use it or while it is the default."""
    with writing() as session:
        domains.remove_domain(session, host)
    click.echo(f"Removed {host}.")


def init_app(app: Flask) -> None:
    app.cli.add_command(domains_cli)
