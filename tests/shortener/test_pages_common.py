"""What the page tests share: users made through the service, signing in through the real form,
and the CSRF token read back from a page, as a browser would. (No tests here; each test module
wraps these in its own fixtures.)"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shortener.models import Role
from shortener.runtime import runtime
from shortener.users import create_user

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_users = itertools.count(1)

SignIn = Callable[..., FlaskClient]


def csrf_token(client: FlaskClient, path: str = "/signin") -> str:
    """The CSRF token of the session, as a form on `path` carries it."""
    page = client.get(path)
    found = _TOKEN.search(page.get_data(as_text=True))
    assert found is not None, f"no CSRF field on {path}"
    return found.group(1)


def post_form(client: FlaskClient, path: str, data: dict[str, Any], **kwargs: Any) -> TestResponse:
    """Submit a form as the page at `path` would: with the session's CSRF token."""
    form = {"csrf_token": csrf_token(client, kwargs.pop("form_page", path)), **data}
    return client.post(path, data=form, **kwargs)


def add_user(app: Flask, email: str, role: str = "marketer", password: str = PASSWORD) -> None:
    with runtime(app).sessions.begin() as session:
        create_user(session, email=email, role=Role(role), password=password)


def sign_in(
    client: FlaskClient, email: str, password: str = PASSWORD, **extra: str
) -> TestResponse:
    return post_form(client, "/signin", {"email": email, "password": password, **extra})


def signed_in_client(app: Flask, role: str = "marketer") -> FlaskClient:
    """A new client, signed in through the form as a new user of `role`."""
    email = f"{role}{next(_users)}@example.com"
    add_user(app, email, role)
    client = app.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def text_of(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def field_error(response: TestResponse, field: str) -> str:
    """The message shown next to a form field."""
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', text_of(response))
    assert found is not None, f"no error shown next to {field}: {text_of(response)[:2000]}"
    return html.unescape(found.group(1))
