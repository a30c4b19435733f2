"""The baseline of bench/redirect.py: a bare Flask route answering 302, with no I/O at all."""

from __future__ import annotations

from flask import Flask, Response

app = Flask(__name__)


@app.get("/<slug>")
def follow(slug: str) -> Response:
    return Response(
        status=302,
        headers={"Location": "https://shop.example.com/", "Cache-Control": "private, no-store"},
    )
