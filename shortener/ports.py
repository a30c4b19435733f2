"""What the link side asks of the click side, which implements it: `shortener` never imports
`analytics`; the composition root hands these in."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from shortener.clicks import RawClick
from shortener.outcomes import Outcome


class ClickSink(Protocol):
    """Takes clicks from the redirect without waiting on SQL, and outcomes (conversions, survey
    answers) once they are safe: in Redis, the spool, or SQL."""

    def emit(self, click: RawClick) -> None: ...

    def record(self, outcome: Outcome) -> None: ...

    def close(self) -> None: ...


class ClickFigures(Protocol):
    """Click counts that the marketer pages show."""

    def link_clicks(
        self, session: Session, link_ids: Collection[int], *, since: datetime
    ) -> Mapping[int, int]: ...

    def last_clicks(
        self, session: Session, touchpoint_ids: Collection[int], *, since: datetime
    ) -> Mapping[int, datetime]: ...
