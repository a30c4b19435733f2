"""Clicks and outcomes as they travel through Redis: one compact JSON field per stream entry,
`c` for a click (a bare array: it is the hot path), `o` for an outcome (an object whose `type`
says a conversion or a survey answer).

orjson encodes a click in about a tenth of the time of the standard library's json, and this
runs once per click in every web process and once per click in the worker.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from shortener.clicks import RawClick
from shortener.outcomes import AnswerEvent, ConversionEvent, Outcome

FIELD = b"c"
OUTCOME_FIELD = b"o"
_KINDS: dict[str, type[ConversionEvent] | type[AnswerEvent]] = {
    "conversion": ConversionEvent, "answer": AnswerEvent,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


class BadEventError(ValueError):
    """A stream entry that is not a click we wrote; it goes to the dead-letter stream."""


def encode_click(click: RawClick) -> dict[bytes, bytes]:
    return {FIELD: click_payload(click)}


def click_payload(click: RawClick) -> bytes:
    row = [
        click.click_id,
        round(click.at, 6),
        click.link_id,
        click.touchpoint_id,
        click.stage_id,
        click.ip,
        click.user_agent,
        click.referrer,
        click.language,
        1 if click.via_qr else 0,
        click.journey,
        (1 if click.test else 0) | (2 if click.private else 0) | (4 if click.prefetch else 0),
    ]
    return orjson.dumps(row)


def decode_click(fields: dict[Any, Any]) -> RawClick:
    raw: Any = fields.get(FIELD, fields.get(FIELD.decode()))
    try:
        row = orjson.loads(raw)
        # The flags: 1 a test, 2 private, 4 a prefetch. Clicks written before them have eleven
        # fields, before journeys ten.
        flags = int(row.pop()) if len(row) == 12 else 0
        journey = row.pop() if len(row) == 11 else ""
        click_id, at, link_id, touchpoint_id, stage_id, ip, agent, referrer, language, qr = row
        click = RawClick(
            click_id=str(click_id),
            at=float(at),
            link_id=int(link_id),
            touchpoint_id=int(touchpoint_id),
            stage_id=int(stage_id),
            ip=str(ip),
            user_agent=str(agent),
            referrer=str(referrer),
            language=str(language),
            via_qr=bool(qr),
            journey=str(journey)[:32],
            test=bool(flags & 1),
            private=bool(flags & 2),
            prefetch=bool(flags & 4),
        )
    except (TypeError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise BadEventError(f"not a click event: {raw!r:.200}") from exc
    if not click.click_id or len(click.click_id) > 32:
        raise BadEventError(f"bad click id: {click.click_id!r:.60}")
    return click


def outcome_payload(outcome: Outcome) -> bytes:
    # `type`, not `kind`: an answer has a kind of its own (nps, csat, ces).
    return orjson.dumps({**dataclasses.asdict(outcome), "type": _KIND_OF[type(outcome)]})


def decode_outcome(raw: Any) -> Outcome:
    try:
        data = orjson.loads(raw)
        cls = _KINDS[data.pop("type")]
        outcome = cls(**data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise BadEventError(f"not an outcome event: {raw!r:.200}") from exc
    if not isinstance(outcome.id, str) or not 0 < len(outcome.id) <= 32:
        raise BadEventError(f"bad outcome id: {outcome.id!r:.60}")
    return outcome


def decode_entry(fields: dict[Any, Any]) -> RawClick | Outcome:
    """A stream entry: a click, or an outcome."""
    raw = fields.get(OUTCOME_FIELD, fields.get(OUTCOME_FIELD.decode()))
    return decode_click(fields) if raw is None else decode_outcome(raw)


def event_id(event: RawClick | Outcome) -> str:
    """What makes a replayed event a no-op: its id, made when the web side took it."""
    return event.click_id if isinstance(event, RawClick) else event.id


def event_to_json(event: RawClick | Outcome) -> str:
    """A spool or dead-letter line: a click's array as is, an outcome prefixed with `o`."""
    if isinstance(event, RawClick):
        return click_payload(event).decode()
    return "o" + outcome_payload(event).decode()


def event_from_json(line: str) -> RawClick | Outcome:
    if line.startswith("o"):
        return decode_outcome(line[1:].encode())
    return decode_click({FIELD: line.encode()})


def click_to_json(click: RawClick) -> str:
    return encode_click(click)[FIELD].decode()


def click_from_json(line: str) -> RawClick:
    return decode_click({FIELD: line.encode()})
