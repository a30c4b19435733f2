"""Errors as people and programs see them: a JSON body under /api/ (and for clients that ask for
JSON), a page everywhere else; one handler for every DomainError, pages included."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from shortener.errors import DomainError, error_body

MAX_BODY = 1024 * 1024

TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "This link is no longer active",
    413: "Request too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
}


def render_error_page(
    status: int, message: str, *, title: str | None = None, customer: bool = False
) -> tuple[str, int]:
    """An error page; a `customer`'s (a short link's visitor) speaks of the link alone, with no
    word of the service behind it and no way into it."""
    title = title or TITLES.get(status, "Error")
    page = render_template(
        "error.html", status=status, title=title, message=message, customer=customer
    )
    return page, status


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def domain_error(exc: DomainError) -> tuple[Any, int, dict[str, str]]:
    if _wants_json():
        return exc.to_json(), exc.status, exc.headers()
    page, status = render_error_page(exc.status, exc.message)
    return page, status, exc.headers()


def http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if not _wants_json():
        return render_error_page(status, exc.description or "")
    code = (exc.name or "error").lower().replace(" ", "_")
    if status == 413:
        message = f"The request body is larger than {MAX_BODY // 1024} KiB."
    else:
        message = exc.description or exc.name
    response = exc.get_response()  # keeps headers such as Allow on a 405
    response.set_data(current_app.json.dumps(error_body(code, message)))
    response.mimetype = "application/json"
    return response


def database_unavailable(exc: OperationalError) -> Any:
    """A database that does not answer (down, restarting, a replica not reachable) is an outage
    to wait out, not a fault of the request: 503, with when to try again."""
    current_app.logger.warning("database unavailable on %s %s: %s", request.method,
                               request.path, exc.orig or exc)
    message = "The database is not answering; try again in a few seconds."
    headers = {"Retry-After": "5"}
    if _wants_json():
        return error_body("database_unavailable", message), 503, headers
    page, status = render_error_page(503, message, title="Unavailable")
    return page, status, headers


def unexpected(exc: Exception) -> Any:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    if _wants_json():
        return error_body("internal_error", "Something went wrong."), 500
    return render_error_page(500, "Something went wrong.")


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.register_error_handler(DomainError, domain_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(Exception, unexpected)
