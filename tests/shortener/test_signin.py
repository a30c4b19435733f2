"""Signing in to the pages: users, sessions, CSRF, the sign-in limit, and the API's own keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from shortener.models import Touchpoint, User
from shortener.runtime import runtime
from shortener.unit_of_work import transaction
from shortener.users import set_password

PASSWORD = "correct horse battery"  # what `auth` gives its users unless told otherwise
WRONG = "wrong password, sorry"


@pytest.fixture
def stored_user(session: Session) -> Callable[[str], User]:
    """The user of `email` as the database has it now."""

    def find(email: str) -> User:
        session.expire_all()  # forget what was loaded before the pages changed it
        return session.scalars(select(User).where(User.email == email)).one()

    return find


# --- signing in and out ---------------------------------------------------------------------------


def test_pages_send_people_to_sign_in_and_back_where_they_were_going(
    client: FlaskClient, auth: Any
) -> None:
    auth.add_user("ana@example.com", "analyst")

    first = client.get("/dashboard?range=7d")
    assert first.status_code == 302
    assert first.headers["Location"] == "/signin?next=/dashboard?range%3D7d"

    response = auth.sign_in(client, "Ana@Example.com ", next="/dashboard?range=7d")

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard?range=7d"
    assert client.get("/dashboard?range=7d").status_code == 200


def test_a_drill_down_page_sends_to_sign_in_and_back_with_its_window(
    client: FlaskClient, auth: Any, touchpoint: dict[str, Any]
) -> None:
    auth.add_user("ana@example.com", "analyst")
    page = "/dashboard/touchpoints/store-flyer?range=7d"

    first = client.get(page)
    assert first.headers["Location"] == "/signin?next=/dashboard/touchpoints/store-flyer?range%3D7d"

    response = auth.sign_in(client, "ana@example.com", next=page)

    assert response.headers["Location"] == page
    assert client.get(page).status_code == 200


def test_sign_in_stamps_the_user_and_a_second_visit_skips_the_form(
    client: FlaskClient, auth: Any, stored_user: Callable[[str], User]
) -> None:
    auth.add_user("mia@example.com", "marketer")
    assert stored_user("mia@example.com").last_signed_in_at is None

    auth.sign_in(client, "mia@example.com")

    assert stored_user("mia@example.com").last_signed_in_at is not None
    again = client.get("/signin")
    assert again.status_code == 302
    assert again.headers["Location"] == "/dashboard"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_after_sign_in_only_pages_of_this_site_are_followed(
    client: FlaskClient, auth: Any, target: str
) -> None:
    auth.add_user("ana@example.com", "analyst")

    response = auth.sign_in(client, "ana@example.com", next=target)

    assert response.headers["Location"] == "/dashboard"


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(
    client: FlaskClient, auth: Any, pages: Any
) -> None:
    auth.add_user("ana@example.com", "analyst")

    wrong = auth.sign_in(client, "ana@example.com", WRONG)
    unknown = auth.sign_in(client, "nobody@example.com", PASSWORD)

    assert wrong.status_code == unknown.status_code == 401
    assert "The email address or the password is not right." in pages.text(wrong)
    assert "The email address or the password is not right." in pages.text(unknown)
    assert client.get("/dashboard").status_code == 302


def test_the_session_cookie_is_http_only_and_same_site(client: FlaskClient, auth: Any) -> None:
    auth.add_user("ana@example.com", "analyst")

    response = auth.sign_in(client, "ana@example.com")

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("touchlink_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here


def test_behind_https_the_session_cookie_is_secure(make_app: Callable[..., Flask]) -> None:
    app = make_app(base_url="https://go.test", secure_cookies=True)

    response = app.test_client().get("/signin", base_url="https://go.test")

    assert "Secure" in response.headers["Set-Cookie"]


def test_signing_out_ends_the_session(auth: Any, pages: Any) -> None:
    client = auth.client("analyst")

    response = pages.post_form(client, "/signout", {}, form_page="/dashboard")

    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(
    app: Flask, client: FlaskClient, auth: Any
) -> None:
    auth.add_user("ana@example.com", "analyst")
    auth.sign_in(client, "ana@example.com")
    assert client.get("/dashboard").status_code == 200

    with transaction(runtime(app).sessions) as session:
        set_password(session, "ana@example.com", "a brand new password")

    assert client.get("/dashboard").status_code == 302
    assert auth.sign_in(client, "ana@example.com").status_code == 401
    assert auth.sign_in(client, "ana@example.com", "a brand new password").status_code == 302


def test_an_analyst_sees_the_dashboard_but_not_the_marketer_pages(auth: Any, pages: Any) -> None:
    client = auth.client("analyst")

    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200
    assert 'href="/touchpoints"' not in pages.text(dashboard)
    for path in ("/touchpoints", "/links", "/links/new", "/touchpoints/new",
                 "/touchpoints/store-flyer/edit"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert response.mimetype == "text/html"  # the error page, not the API's JSON
        assert "analyst" in pages.text(response)


def test_the_home_page_sends_each_role_to_its_first_page(client: FlaskClient, auth: Any) -> None:
    assert client.get("/").headers["Location"] == "/signin"
    assert auth.client("analyst").get("/").headers["Location"] == "/dashboard"


# --- CSRF --------------------------------------------------------------------------------------


def test_a_form_without_the_session_token_is_refused(
    session: Session, auth: Any, pages: Any
) -> None:
    client = auth.client("marketer")
    data = {"key": "forged", "name": "Forged", "channel": "digital"}

    missing = client.post("/touchpoints/new", data=data)
    wrong = client.post("/touchpoints/new", data={**data, "csrf_token": "not-the-token"})

    for response in (missing, wrong):
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert "This form has expired" in pages.text(response)
    assert session.scalars(select(Touchpoint)).all() == []


def test_the_sign_in_form_needs_the_token_too(client: FlaskClient, auth: Any) -> None:
    auth.add_user("ana@example.com", "analyst")

    response = client.post("/signin", data={"email": "ana@example.com", "password": PASSWORD})

    assert response.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_signing_in_gives_a_new_csrf_token(client: FlaskClient, auth: Any, pages: Any) -> None:
    auth.add_user("ana@example.com", "analyst")
    before = pages.csrf_token(client)

    auth.sign_in(client, "ana@example.com")

    assert pages.csrf_token(client, "/dashboard") != before


# --- the API takes keys, never the session ------------------------------------------------------


def test_a_session_cookie_never_authorises_the_api(auth: Any, pages: Any) -> None:
    client = auth.client("admin")
    token = pages.csrf_token(client, "/dashboard")

    reads = [client.get(path) for path in ("/api/v1/links", "/api/v1/touchpoints",
                                            "/api/v1/reports/touchpoints",
                                            "/api/v1/reports/timeseries")]
    write = client.post(
        "/api/v1/touchpoints",
        json={"key": "via-cookie", "name": "Via cookie", "channel": "digital"},
        headers={"X-CSRF-Token": token},
    )
    form_write = client.post(
        "/api/v1/touchpoints",
        data={"csrf_token": token, "key": "via-form", "name": "Via form", "channel": "digital"},
    )

    for response in [*reads, write, form_write]:
        assert response.status_code == 401, response.get_data(as_text=True)
        assert response.get_json()["error"]["code"] == "unauthenticated"


def test_the_api_with_a_key_needs_no_csrf_token(
    client: FlaskClient, marketer: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/touchpoints",
        json={"key": "by-key", "name": "By key", "channel": "digital"},
        headers=marketer,
    )

    assert response.status_code == 201


# --- the sign-in limit ---------------------------------------------------------------------------


def test_five_failures_for_an_address_lock_it_for_a_while_even_with_the_right_password(
    client: FlaskClient, auth: Any, pages: Any
) -> None:
    auth.add_user("ana@example.com", "analyst")
    for _ in range(5):
        assert auth.sign_in(client, "ana@example.com", WRONG).status_code == 401

    locked = auth.sign_in(client, "ana@example.com", PASSWORD)

    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in pages.text(locked)
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert client.get("/dashboard").status_code == 302


def test_failures_are_counted_per_client_address_across_emails(
    app: Flask, client: FlaskClient, auth: Any, pages: Any
) -> None:
    auth.add_user("ana@example.com", "analyst")
    for n in range(5):
        auth.sign_in(client, f"guess{n}@example.com", WRONG)

    from_there = auth.sign_in(client, "ana@example.com")
    elsewhere = app.test_client()
    csrf = pages.csrf_token(elsewhere)
    from_elsewhere = elsewhere.post(
        "/signin",
        data={"csrf_token": csrf, "email": "ana@example.com", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )

    assert from_there.status_code == 429
    assert from_elsewhere.status_code == 302


def test_a_success_clears_the_failures_of_that_address(
    app: Flask, client: FlaskClient, auth: Any, pages: Any
) -> None:
    auth.add_user("ana@example.com", "analyst")
    for _ in range(4):
        auth.sign_in(client, "ana@example.com", WRONG)
    assert auth.sign_in(client, "ana@example.com").status_code == 302
    other = app.test_client()

    for n in range(4):
        response = other.post(
            "/signin",
            data={"csrf_token": pages.csrf_token(other), "email": "ana@example.com",
                  "password": WRONG},
            environ_base={"REMOTE_ADDR": f"198.51.100.{n + 1}"},
        )
        assert response.status_code == 401


@pytest.fixture
def second_redis_app(make_app: Callable[..., Flask], redis_app: Flask, redis_url: str) -> Flask:
    """Another web process on the same database and Redis."""
    return make_app(redis_url=redis_url)


def test_with_redis_every_web_process_sees_the_same_failures(
    redis_app: Flask, second_redis_app: Flask, redis_client: redis.Redis, auth: Any, pages: Any
) -> None:
    auth.add_user("ana@example.com", "analyst")
    first = redis_app.test_client()
    for _ in range(5):
        assert auth.sign_in(first, "ana@example.com", WRONG).status_code == 401

    second = second_redis_app.test_client()
    response = second.post(
        "/signin",
        data={"csrf_token": pages.csrf_token(second), "email": "ana@example.com",
              "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "203.0.113.50"},
    )

    assert response.status_code == 429
    keys = redis_client.keys("touchlink:signin:*")
    assert len(keys) == 2  # the address and the client IP
    assert all(b"ana" not in key for key in keys)  # hashed, not in the clear
    assert all(0 < redis_client.ttl(key) <= 15 * 60 for key in keys)


# --- the users command ---------------------------------------------------------------------------


def test_users_create_asks_for_the_password_twice_and_stores_only_a_hash(
    app: Flask, cli: FlaskCliRunner, client: FlaskClient, auth: Any,
    stored_user: Callable[[str], User],
) -> None:
    with app.app_context():
        result = cli.invoke(
            args=["users", "create", "--email", "Lea@Example.com", "--role", "marketer"],
            input="a long passphrase\na long passphrase\n",
        )

    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output
    assert "a long passphrase" not in result.output
    user = stored_user("lea@example.com")
    assert user.role == "marketer"
    assert user.password_hash.startswith("$argon2id$")
    assert "a long passphrase" not in user.password_hash
    assert auth.sign_in(client, "lea@example.com", "a long passphrase").status_code == 302


def test_users_create_reads_a_password_from_stdin_for_scripts(
    app: Flask, cli: FlaskCliRunner, client: FlaskClient, auth: Any
) -> None:
    with app.app_context():
        result = cli.invoke(
            args=["users", "create", "--email", "bot@example.com", "--role", "analyst",
                  "--password-stdin"],
            input=" spaces count too \n",
        )
        listed = cli.invoke(args=["users", "list"])

    assert result.exit_code == 0, result.output
    assert "bot@example.com" in listed.output and "analyst" in listed.output
    assert auth.sign_in(client, "bot@example.com", " spaces count too ").status_code == 302


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--email", "x@example.com", "--role", "admin"], "short\n", "at least 10 characters"),
        (["--email", "not-an-address", "--role", "admin"], "long enough pass\n", "email"),
        (["--email", "taken@example.com", "--role", "admin"], "long enough pass\n",
         "exists already"),
    ],
)
def test_users_create_refuses_bad_input_with_a_message(
    app: Flask, cli: FlaskCliRunner, auth: Any, args: list[str], password: str, message: str
) -> None:
    auth.add_user("taken@example.com", "analyst")
    with app.app_context():
        result = cli.invoke(args=["users", "create", *args, "--password-stdin"], input=password)

    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
