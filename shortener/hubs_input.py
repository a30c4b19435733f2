"""What the API, the pages and the CLI send to make or change a hub and its buttons, checked
field by field by the API's models; a refusal names the field (`buttons.2.url`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, model_validator

from shortener import request_input, schemas
from shortener.errors import InvalidFieldError
from shortener.hubs_avatar import Avatar
from shortener.models import MAX_ID
from shortener.urls import MAX_URL_LENGTH

MAX_BUTTONS = 30
MAX_TITLE = 100
MAX_DESCRIPTION = 300
MAX_LABEL = 80

Title = Annotated[str, schemas.Line(MAX_TITLE)]
Description = Annotated[str, schemas.Line(MAX_DESCRIPTION)]
# Any JSON value, read by `Avatar.from_base64`: a refused avatar keeps its own errors,
# `invalid_avatar`, and `avatar_too_large` (a 413) past 256 KiB.
AvatarData = Annotated[Any, WithJsonSchema({
    "type": ["string", "null"],
    "description": "a PNG, JPEG or WebP of at most 256 KiB, in base64 or as a data: URL;"
    " null takes it off",
})]


class ButtonIn(schemas.Body):
    label: Annotated[str, schemas.Line(MAX_LABEL)]
    url: Annotated[str, schemas.Address(MAX_URL_LENGTH)] = Field(description="the destination")
    stage: schemas.Key | None = Field(default=None, description="the hub's own if null")
    id: Annotated[int, schemas.Between(1, MAX_ID)] | None = Field(
        default=None, description="the hub's button it is: it keeps its link, and its clicks"
    )


Buttons = Annotated[list[ButtonIn], Field(max_length=MAX_BUTTONS)]


class ButtonList(schemas.Body):
    """A hub's buttons, in order: `{"buttons": [...]}`, or the bare list."""

    buttons: Buttons

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        # Anything but an object is the list (and refused as such if it is none).
        return data if isinstance(data, dict) else {"buttons": data}


class NewHub(schemas.Body):
    touchpoint: schemas.Key
    title: Title
    description: Description | None = None
    stage: schemas.Key = schemas.optional(description="its link's; the first stage when absent")
    slug: Annotated[str, schemas.Line(1000)] = schemas.optional(
        description="drawn at random when absent"
    )
    avatar: AvatarData = None
    buttons: Buttons = schemas.optional()


class HubChange(schemas.Body):
    """Only the fields given change. Its touchpoint and slug stay as made; its buttons change
    with PUT /api/v1/hubs/{hub_id}/buttons."""

    title: Title = schemas.optional()
    description: Description | None = None
    stage: schemas.Key = schemas.optional(description="its link's")
    avatar: AvatarData = None
    archived: bool = schemas.optional(description="false restores it, with its links")


@dataclass(frozen=True, slots=True)
class ButtonInput:
    """One button as sent: a label, a destination, a stage (None: the hub's own), and the id of
    the button it is when it is one the hub has."""

    label: str
    url: str
    stage: str | None = None
    id: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> ButtonInput:
        return cls.of(schemas.validate_body(ButtonIn, data))

    @classmethod
    def of(cls, body: ButtonIn) -> ButtonInput:
        return cls(body.label, body.url, body.stage, body.id)

    @classmethod
    def from_form(cls, form: Mapping[str, str], *, button_id: int | None = None) -> ButtonInput:
        data: dict[str, Any] = {name: form.get(name, "") for name in ("label", "url")}
        stage = form.get("stage", "").strip()
        if stage:
            data["stage"] = stage
        found = cls.from_json(data)
        return cls(found.label, found.url, found.stage, button_id)


@dataclass(frozen=True, slots=True)
class HubInput:
    """Fields of a create (touchpoint and title required) or an update (only those given);
    `avatar` is an Avatar, or None to take it off."""

    values: dict[str, Any]

    @classmethod
    def from_json(cls, data: Any, *, partial: bool = False) -> HubInput:
        model: type[NewHub | HubChange] = HubChange if partial else NewHub
        return cls.of(schemas.validate_body(model, data))

    @classmethod
    def of(cls, body: NewHub | HubChange) -> HubInput:
        values = body.given()
        if values.get("avatar") is not None:
            values["avatar"] = Avatar.from_base64(values["avatar"])
        if "buttons" in values:
            values["buttons"] = [ButtonInput.of(button) for button in values["buttons"]]
        return cls(values)

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
    """Name a refused field inside `prefix`: `url` becomes `buttons.2.url`, as the models
    name it."""
    if not prefix:
        yield
        return
    try:
        yield
    except InvalidFieldError as exc:
        message = exc.message.removeprefix(f"{exc.field}: ")
        raise type(exc)(f"{prefix}.{exc.field}", message) from None
