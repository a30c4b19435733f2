"""Server-rendered pages of the link side."""

from __future__ import annotations

from flask import render_template

TITLES = {
    400: "Bad request",
    404: "Link not found",
    405: "Method not allowed",
    410: "This link is no longer active",
    413: "Request too large",
    500: "Something went wrong",
}


def render_error_page(status: int, message: str) -> tuple[str, int]:
    title = TITLES.get(status, "Error")
    return render_template("error.html", status=status, title=title, message=message), status
