"""Forms of the pages: a refusal of the services shown again next to the fields it names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shortener.errors import DomainError
from shortener.unit_of_work import rollback_request


def field_errors(exc: DomainError) -> dict[str, str]:
    """A refusal as messages keyed by form field; `_form` when it names no field."""
    field = exc.details.get("field")
    if isinstance(field, str):
        prefix = f"{field}: "
        text = exc.message[len(prefix) :] if exc.message.startswith(prefix) else exc.message
        return {field: text[:1].upper() + text[1:]}
    return {"_form": exc.message}


def submit(action: Callable[[], Any], show_form: Callable[[dict[str, str]], str]) -> Any:
    """What `action` answers; if the services refuse, the form again with their messages (422,
    or 409 for a slug or key in use), after undoing anything the refused action did."""
    try:
        return action()
    except DomainError as exc:
        rollback_request()
        return show_form(field_errors(exc)), exc.status
