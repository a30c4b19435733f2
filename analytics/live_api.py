"""`GET /api/v1/live`: the live feed as Server-Sent Events, for analysts.

A bearer key of the analyst role or above, or (no Authorization header) the session of a
signed-in analyst: the dashboard's live panel reads it through its EventSource, which cannot
send a header. The session is taken here only, on a GET that changes nothing, and the answer
carries no CORS header, so a page of another site can neither read the feed nor act through it.

Each viewer holds one of the server's threads for as long as it watches: a process serves at
most TOUCHLINK_LIVE_VIEWERS of them and answers 503 (`live_full`) beyond.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, request
from pydantic import Field, StringConstraints

from analytics.live import EventStream, LiveFilter, LiveHub, channel_of
from analytics.sinks import BufferedSQLSink
from shortener import schemas, stages, touchpoints
from shortener.api_auth import authenticate_request
from shortener.errors import AuthenticationError, PermissionDeniedError
from shortener.models import Role
from shortener.openapi import operation
from shortener.redis_client import connect
from shortener.runtime import runtime
from shortener.signin import current_user
from shortener.unit_of_work import db_session

bp = Blueprint("live_api", __name__, url_prefix="/api/v1/live")

EXTENSION = "touchlink.live"
F = TypeVar("F", bound=Callable[..., Any])


# A key, looked up as sent: one that names nothing is a 404.
_KeyName = Annotated[str, StringConstraints(strip_whitespace=True)]


class LiveQuery(schemas.Query):
    touchpoint: _KeyName | None = Field(default=None, description="only this touchpoint's clicks")
    stage: _KeyName | None = Field(default=None, description="only this stage's clicks")


def analyst_or_signed_in(view: F) -> F:
    """`check_analyst` first, before the query is read, as `@requires` does for a key."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_analyst()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@bp.get("")
@analyst_or_signed_in
@operation(
    "The live feed of clicks, as Server-Sent Events", query=LiveQuery,
    errors=(401, 403, 404), media={"text/event-stream": {"schema": {"type": "string"}}},
    description="Role: analyst or above, by an API key or (without one) the session of a "
    "signed-in user. Beyond TOUCHLINK_LIVE_VIEWERS viewers a process answers 503 "
    "(`live_full`).",
)
def live(query: LiveQuery) -> Any:
    wanted = live_filter(query)
    hub = live_hub()
    viewer = hub.join(wanted)
    stream = EventStream(hub, viewer, heartbeat=runtime().settings.live_heartbeat)
    return Response(stream, mimetype="text/event-stream", headers={
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # a buffering proxy (nginx) would hold the events back
    })


def check_analyst() -> None:
    """The bearer key's role, or the signed-in user's, must reach analyst."""
    if request.headers.get("Authorization"):
        role, who = authenticate_request().role, "key"
    else:
        user = current_user()
        if user is None:
            raise AuthenticationError(
                "Send an API key of the analyst role or above (Authorization: Bearer …), "
                "or sign in."
            )
        role, who = user.role, "account"
    if not Role(role).allows(Role.ANALYST):
        raise PermissionDeniedError(
            f"This {who} has the {role} role; this needs {Role.ANALYST.value} or above."
        )


def live_filter(query: LiveQuery) -> LiveFilter:
    """The touchpoint and stage the feed is narrowed to; a 404 for a key that names nothing."""
    session = db_session()
    touchpoint, stage = query.touchpoint, query.stage
    if touchpoint is not None:
        touchpoints.get_touchpoint(session, touchpoint)
    if stage is not None:
        stages.get_stage(session, stage)
    return LiveFilter(touchpoint, stage)


def live_hub(app: Flask | None = None) -> LiveHub:
    hub: LiveHub = (app or current_app).extensions[EXTENSION]
    return hub


def init_app(app: Flask) -> None:
    """One hub per process: fed from the Redis channel, or (embedded) by the sink itself."""
    rt = runtime(app)
    if rt.redis is not None:
        url, cluster = rt.settings.redis_url, rt.settings.redis_cluster
        assert url is not None
        hub = LiveHub(
            max_viewers=rt.settings.live_viewers,
            # Blocking reads, so no socket timeout; the health check notices a dead server.
            connect=lambda: connect(url, cluster=cluster, health_check_interval=30),
            channel=channel_of(rt.redis, rt.settings.stream),
        )
    else:
        assert isinstance(rt.sink, BufferedSQLSink), "without Redis, clicks go to the embedded sink"
        hub = rt.sink.live
    app.extensions[EXTENSION] = hub
    app.register_blueprint(bp)
