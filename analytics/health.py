"""`/healthz` (can we take and store clicks, and how far behind is ingest) and `/metrics`."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from analytics.models import Journey, JourneyTouch
from analytics.runtime import runtime
from analytics.stream import shard_backlog, shard_streams
from shortener.db import Base
from shortener.redis_client import ERRORS, Client

bp = Blueprint("health", __name__)

# Ingest this far behind is reported as degraded: reports are missing recent clicks.
LAG_SECONDS = 60
BACKLOG = 100_000
# Tables larger than this (by PostgreSQL's statistics) report their estimated size.
EXACT_COUNT_UP_TO = 100_000


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    rt = runtime()
    checks: dict[str, Any] = {"sql": _check_sql()}
    problems = [] if checks["sql"]["ok"] else ["sql"]
    if checks["sql"]["ok"]:
        checks["journeys"] = _check_journeys(rt.settings.journeys)
    if rt.redis is not None:
        streams = shard_streams(rt.settings.stream, rt.settings.stream_shards)
        checks["redis"] = _check_redis(rt.redis, streams)
        if not checks["redis"]["ok"]:
            problems.append("redis")
        elif checks["redis"]["oldest_pending_seconds"] > LAG_SECONDS or (
            checks["redis"]["stream_length"] > BACKLOG
        ):
            problems.append("ingest_lag")
    spooled = getattr(rt.sink, "spooled", None)
    if callable(spooled):
        checks["spool"] = {"clicks": spooled()}
        if checks["spool"]["clicks"]:
            problems.append("spool")
    if "sql" in problems:
        status, code = "failing", 503
    elif problems:
        status, code = "degraded", 200  # redirects still answer and no click is lost
    else:
        status, code = "ok", 200
    return {"status": status, "problems": problems, "checks": checks}, code


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(runtime().metrics.registry), mimetype=CONTENT_TYPE_LATEST)


def _check_journeys(mode: str) -> dict[str, Any]:
    """How journeys are followed (TOUCHLINK_JOURNEYS), and how many are kept now."""
    with runtime().sessions() as session:
        journeys, approximate = _row_count(session, Journey)
        touches, _ = _row_count(session, JourneyTouch)
    return {"mode": mode, "journeys": journeys, "touches": touches, "approximate": approximate}


def _row_count(session: Session, model: type[Base]) -> tuple[int, bool]:
    """The rows of a table, and whether that is PostgreSQL's estimate: counting tens of millions
    of touches on every probe would make /healthz the slowest page there is."""
    if session.get_bind().dialect.name == "postgresql":
        estimate = session.scalar(
            text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:table)"),
            {"table": model.__tablename__},
        )
        if estimate is not None and estimate > EXACT_COUNT_UP_TO:
            return int(estimate), True
    return int(session.scalar(select(func.count()).select_from(model)) or 0), False


def _check_sql() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with runtime().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_redis(client: Client, streams: list[str]) -> dict[str, Any]:
    """Every shard's backlog, and the sums (the oldest pending entry: of any shard). A shard
    that does not answer (its cluster node is away) fails the check, naming the shard."""
    started = time.perf_counter()
    shards: list[dict[str, Any]] = []
    error = None
    for stream in streams:
        try:
            backlog = shard_backlog(client, stream)
        except ERRORS as exc:
            error = type(exc).__name__
            shards.append({"stream": stream, "ok": False, "error": error})
            continue
        shards.append({
            "stream": stream, "ok": True, "length": backlog.length, "pending": backlog.pending,
            "oldest_pending_seconds": backlog.oldest_pending_seconds,
        })
    answered = [shard for shard in shards if shard["ok"]]
    if not answered:
        return {"ok": False, "error": error, "shards": shards}
    check: dict[str, Any] = {
        "ok": error is None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "stream_length": sum(shard["length"] for shard in answered),
        "pending": sum(shard["pending"] for shard in answered),
        "oldest_pending_seconds": max(shard["oldest_pending_seconds"] for shard in answered),
        "shards": shards,
    }
    if error is not None:
        check["error"] = error
    return check
