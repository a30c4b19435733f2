"""Alembic migrations for the one metadata of both packages, runnable from the installed package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from analytics.partitions import is_click_partition

HERE = Path(__file__).resolve().parent


def alembic_config(bind: Any) -> Config:
    """An Alembic config running on `bind` (an Engine or Connection); no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = bind
    return config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """What autogenerate compares: not the partitions of `clicks`, which the worker makes."""
    return not (type_ == "table" and name is not None and is_click_partition(name))


def upgrade(bind: Any, revision: str = "head") -> None:
    command.upgrade(alembic_config(bind), revision)


def current_revision(bind: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with bind.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
