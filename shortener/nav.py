"""The top navigation of the pages, to which each package adds its own entries."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, url_for

from shortener.models import Role, User

NAV = "touchlink.nav"


@dataclass(frozen=True, slots=True)
class NavItem:
    position: int
    endpoint: str
    label: str
    role: Role
    section: str  # the endpoints whose pages highlight this item start with this


def add_nav_item(
    app: Flask, endpoint: str, label: str, *, role: Role, position: int, section: str = ""
) -> None:
    """Put a page in the top navigation, for users whose role reaches `role`."""
    items: list[NavItem] = app.extensions.setdefault(NAV, [])
    items.append(NavItem(position, endpoint, label, role, section or endpoint))
    items.sort(key=lambda item: item.position)


def nav_items(user: User | None) -> list[NavItem]:
    if user is None:
        return []
    items: list[NavItem] = current_app.extensions.get(NAV, [])
    return [item for item in items if Role(user.role).allows(item.role)]


def landing_page(user: User) -> str:
    """Where a user goes after signing in: the first page of the navigation they may see."""
    items = nav_items(user)
    return url_for(items[0].endpoint) if items else url_for("auth.sign_in")
