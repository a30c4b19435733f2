"""`touchlink worker` and `touchlink report …`: the click side's commands."""

from __future__ import annotations

import click
from flask import Flask


@click.command("worker")
@click.option("--drain", is_flag=True, help="Process until the stream is empty, then exit.")
def worker_command(drain: bool) -> None:
    """Move clicks from Redis into SQL (the embedded default needs no worker)."""
    raise click.ClickException("not built yet")


def init_app(app: Flask) -> None:
    app.cli.add_command(worker_command)
