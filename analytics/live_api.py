"""`GET /api/v1/live`: the live feed as Server-Sent Events, for analysts.

A bearer key of the analyst role or above, or (no Authorization header) the session of a
signed-in analyst: the dashboard's live panel reads it through its EventSource, which cannot
send a header. The session is taken here only, on a GET that changes nothing, and the answer
carries no CORS header, so a page of another site can neither read the feed nor act through it.

Each viewer holds one of the server's threads for as long as it watches: a process serves at
most TOUCHLINK_LIVE_VIEWERS of them and answers 503 (`live_full`) beyond.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from analytics.live import EventStream, LiveFilter, LiveHub, channel_of
from analytics.reports.query import arg, check_known
from analytics.sinks import BufferedSQLSink
from shortener import stages, touchpoints
from shortener.api_auth import authenticate_request
from shortener.errors import AuthenticationError, PermissionDeniedError
from shortener.models import Role
from shortener.runtime import runtime
from shortener.signin import current_user
from shortener.unit_of_work import db_session

bp = Blueprint("live_api", __name__, url_prefix="/api/v1/live")

EXTENSION = "touchlink.live"
PARAMETERS = frozenset({"touchpoint", "stage"})


@bp.get("")
def live() -> Any:
    check_analyst()
    wanted = parse_filter(request.args)
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


def parse_filter(args: Mapping[str, str]) -> LiveFilter:
    """`touchpoint=KEY` and `stage=KEY`; a 400 for any other parameter, a 404 for a key that
    names nothing."""
    check_known(args, PARAMETERS)
    session = db_session()
    touchpoint, stage = arg(args, "touchpoint"), arg(args, "stage")
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
        hub = LiveHub(
            max_viewers=rt.settings.live_viewers,
            redis_url=rt.settings.redis_url,
            channel=channel_of(rt.redis, rt.settings.stream),
        )
    else:
        assert isinstance(rt.sink, BufferedSQLSink), "without Redis, clicks go to the embedded sink"
        hub = rt.sink.live
    app.extensions[EXTENSION] = hub
    app.register_blueprint(bp)
