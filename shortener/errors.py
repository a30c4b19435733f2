"""Domain errors with stable codes: the one set of failures of the API, the pages and the CLI."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A failure the client can act on; `code` is stable, `message` is for people."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)

    def headers(self) -> dict[str, str]:
        """Response headers the status calls for."""
        return {}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one JSON shape of every error; `details` is always there, if only empty."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


class BadRequestError(DomainError):
    code = "bad_request"
    status = 400


class InvalidParameterError(BadRequestError):
    """A query-string parameter is malformed (e.g. a QR colour that is not a colour)."""

    code = "invalid_parameter"

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}", details={"parameter": name})
        self.name = name


class InvalidFieldError(DomainError):
    """One field of the input is missing, of the wrong type or out of range."""

    code = "invalid_field"
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details={"field": field})
        self.field = field


class InvalidURLError(InvalidFieldError):
    code = "invalid_url"


class InvalidSlugError(InvalidFieldError):
    code = "invalid_slug"


class UnknownReferenceError(InvalidFieldError):
    """The input names a touchpoint or stage that does not exist."""

    code = "unknown_reference"


class AuthenticationError(DomainError):
    code = "unauthenticated"
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}  # a 401 must say which scheme it wants


class PermissionDeniedError(DomainError):
    code = "forbidden"
    status = 403


class NotFoundError(DomainError):
    code = "not_found"
    status = 404


class ConflictError(DomainError):
    code = "conflict"
    status = 409


class SlugTakenError(ConflictError):
    code = "slug_taken"

    def __init__(self, slug: str, domain: str) -> None:
        super().__init__(
            f"The slug '{slug}' is already used on {domain}.",
            details={"field": "slug", "slug": slug, "domain": domain},
        )


class SlugRetiredError(ConflictError):
    """A slug another link gave up: codes printed with it still lead to that link."""

    code = "slug_retired"

    def __init__(self, slug: str, domain: str, link_id: int) -> None:
        super().__init__(
            f"The slug '{slug}' on {domain} was link {link_id}'s: codes printed with it still "
            "lead there. Choose another slug.",
            details={"field": "slug", "slug": slug, "domain": domain, "link_id": link_id},
        )


class GoneError(DomainError):
    code = "gone"
    status = 410


class SignInError(DomainError):
    """The email and password do not match a user; never says which of the two was wrong."""

    code = "sign_in_failed"
    status = 401

    def __init__(self) -> None:
        super().__init__("The email address or the password is not right.")


class CsrfError(BadRequestError):
    """A form posted without the session's token: stale, or sent from another site."""

    code = "csrf_failed"

    def __init__(self) -> None:
        super().__init__(
            "This form has expired or did not come from this site. "
            "Go back, reload the page and send it again."
        )


class UnavailableError(DomainError):
    """A store we need is not answering: nothing was taken, the client should try again."""

    code = "unavailable"
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}
