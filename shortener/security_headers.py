"""Headers every page carries: a strict Content-Security-Policy (no inline code), nosniff, and
no caching of what a signed-in user sees. Redirects stay lean."""

from __future__ import annotations

from flask import Flask, Response, g, request

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# What every response carries, redirects included (`shortener.redirect` sends these itself on the
# path that answers a redirect without Flask's request machinery).
EVERY_RESPONSE = (("X-Content-Type-Options", "nosniff"),)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    for name, value in EVERY_RESPONSE:
        headers.setdefault(name, value)
    if response.status_code < 400 and request.endpoint == "redirect":
        return response  # a bare 30x: kept as lean as it is
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("Referrer-Policy", "same-origin")
    if g.get("user") is not None and "Cache-Control" not in headers:
        headers["Cache-Control"] = "private, no-store"  # pages of signed-in users stay private
    elif request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")  # figures and keys' answers, never kept
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
