"""What the API, the pages and the CLI send to make or change a hub and its buttons, checked
field by field; a refusal names the field (`buttons[2].url`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shortener import request_input
from shortener.errors import InvalidFieldError
from shortener.hubs_avatar import Avatar
from shortener.models import MAX_ID
from shortener.urls import MAX_URL_LENGTH

MAX_BUTTONS = 30
MAX_TITLE = 100
MAX_DESCRIPTION = 300
MAX_LABEL = 80
FIELDS = frozenset(
    {"touchpoint", "title", "description", "stage", "slug", "avatar", "buttons", "archived"}
)
_CREATE_ONLY = frozenset({"touchpoint", "slug", "buttons"})
BUTTON_FIELDS = frozenset({"id", "label", "url", "stage"})


@dataclass(frozen=True, slots=True)
class ButtonInput:
    """One button as sent: a label, a destination, a stage (None: the hub's own), and the id of
    the button it is when it is one the hub has."""

    label: str
    url: str
    stage: str | None = None
    id: int | None = None

    @classmethod
    def from_json(cls, data: Any, *, field: str = "button") -> ButtonInput:
        if not isinstance(data, dict):
            raise InvalidFieldError(field, "must be an object with a label and a url")
        with within(field if field != "button" else ""):
            request_input.reject_unknown(data, BUTTON_FIELDS)
            label = request_input.string(data, "label", required=True, max_length=MAX_LABEL)
            url = request_input.string(data, "url", required=True, max_length=MAX_URL_LENGTH)
            stage = request_input.key(data, "stage", required=False)
            button_id = request_input.integer(data, "id", low=1, high=MAX_ID)
        return cls(
            label=label,
            url=url,
            stage=None if stage in (None, request_input.MISSING) else stage,
            id=None if button_id in (None, request_input.MISSING) else button_id,
        )

    @classmethod
    def from_form(cls, form: Mapping[str, str], *, button_id: int | None = None) -> ButtonInput:
        data: dict[str, Any] = {name: form.get(name, "") for name in ("label", "url")}
        stage = form.get("stage", "").strip()
        if stage:
            data["stage"] = stage
        found = cls.from_json(data)
        return cls(found.label, found.url, found.stage, button_id)


def buttons_from_json(data: Any) -> list[ButtonInput]:
    """The full ordered list of a hub's buttons: `{"buttons": [...]}` or the list itself."""
    if isinstance(data, dict):
        request_input.reject_unknown(data, frozenset({"buttons"}))
        data = data.get("buttons")
    if not isinstance(data, list):
        raise InvalidFieldError("buttons", "must be a list of buttons, each {label, url, stage}")
    if len(data) > MAX_BUTTONS:
        raise InvalidFieldError(
            "buttons", f"a hub has at most {MAX_BUTTONS} buttons; {len(data)} were sent"
        )
    return [ButtonInput.from_json(item, field=f"buttons[{i}]") for i, item in enumerate(data)]


@dataclass(frozen=True, slots=True)
class HubInput:
    """Fields of a create (touchpoint and title required) or an update (only those given);
    `avatar` is an Avatar, or None to take it off."""

    values: dict[str, Any]

    @classmethod
    def from_json(cls, data: Any, *, partial: bool = False) -> HubInput:
        data = request_input.json_object(data)
        if partial:
            fixed = sorted(_CREATE_ONLY & set(data))
            if fixed:
                raise InvalidFieldError(
                    fixed[0],
                    "is set when the hub is made (buttons: PUT /api/v1/hubs/{id}/buttons)",
                )
        request_input.reject_unknown(data, FIELDS if partial else FIELDS - {"archived"})
        required = not partial
        values = {
            "touchpoint": request_input.key(data, "touchpoint", required=required),
            "title": request_input.string(data, "title", required=required, max_length=MAX_TITLE),
            "description": request_input.string(data, "description", max_length=MAX_DESCRIPTION),
            "stage": request_input.key(data, "stage", required=False),
            "slug": request_input.string(data, "slug", max_length=1000),
            "archived": request_input.boolean(data, "archived"),
        }
        for name in ("title", "stage", "slug", "archived"):
            if values[name] is None:
                raise InvalidFieldError(name, "must not be null")
        if "avatar" in data:
            raw = data["avatar"]
            values["avatar"] = None if raw is None else Avatar.from_base64(raw)
        if "buttons" in data:
            values["buttons"] = buttons_from_json(data["buttons"])
        return cls({k: v for k, v in values.items() if v is not request_input.MISSING})

    @classmethod
    def from_form(
        cls, form: Mapping[str, str], *, partial: bool, avatar: bytes | None = None,
        remove_avatar: bool = False,
    ) -> HubInput:
        """The page's form; an uploaded file's bytes as `avatar`."""
        names = ("title", "stage") if partial else ("touchpoint", "title", "stage")
        data: dict[str, Any] = {name: form.get(name, "") for name in names}
        if not data["stage"].strip():
            del data["stage"]
        request_input.form_optional(form, data, "description", partial=partial)
        slug = form.get("slug", "").strip()
        if slug and not partial:
            data["slug"] = slug
        found = cls.from_json(data, partial=partial)
        if avatar:
            found.values["avatar"] = Avatar.from_upload(avatar)
        elif remove_avatar:
            found.values["avatar"] = None
        return found


@contextmanager
def within(prefix: str) -> Iterator[None]:
    """Name a refused field inside `prefix`: `url` becomes `buttons[2].url`."""
    if not prefix:
        yield
        return
    try:
        yield
    except InvalidFieldError as exc:
        message = exc.message.removeprefix(f"{exc.field}: ")
        raise type(exc)(f"{prefix}.{exc.field}", message) from None
