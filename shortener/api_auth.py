"""Bearer API keys on the JSON API: who is calling, and whether their role reaches the view's."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from shortener import keys
from shortener.db import utcnow
from shortener.errors import PermissionDeniedError
from shortener.models import ApiKey, Role
from shortener.runtime import runtime
from shortener.unit_of_work import transaction

F = TypeVar("F", bound=Callable[..., Any])


def requires(role: Role) -> Callable[[F], F]:
    """Authenticate the bearer key and check that its role reaches `role`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = authenticate_request()
            if not Role(key.role).allows(role):
                raise PermissionDeniedError(
                    f"This key has the {key.role} role; this needs {role.value} or above."
                )
            g.api_key = key
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]  # for the OpenAPI document
        return wrapper  # type: ignore[return-value]

    return decorate


def authenticate_request() -> ApiKey:
    """The request's key, or a 401. Both happen before the request's own unit of work: the key
    is read on its own, and its last use is stamped in a transaction of its own, which a request
    that then fails does not undo."""
    sessions, now = runtime().sessions, utcnow()
    with sessions() as session:
        key = keys.authenticate(session, request.headers.get("Authorization"), now=now)
    if keys.use_due(key, now=now):
        with transaction(sessions) as session:
            keys.record_use(session, key, now=now)
    return key
