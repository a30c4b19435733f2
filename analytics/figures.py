"""Click counts for the marketer pages (the link side's ClickFigures port), over the hourly
rollups of a recent window."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.models import LinkHourlyStats as Stats


class RollupFigures:
    def link_clicks(
        self, session: Session, link_ids: Collection[int], *, since: datetime
    ) -> Mapping[int, int]:
        if not link_ids:
            return {}
        rows = session.execute(
            select(Stats.link_id, func.sum(Stats.clicks))
            .where(Stats.hour >= since, Stats.link_id.in_(list(link_ids)))
            .group_by(Stats.link_id)
        )
        return {link_id: int(clicks or 0) for link_id, clicks in rows}

    def last_clicks(
        self, session: Session, touchpoint_ids: Collection[int], *, since: datetime
    ) -> Mapping[int, datetime]:
        if not touchpoint_ids:
            return {}
        rows = session.execute(
            select(Stats.touchpoint_id, func.max(Stats.last_click_at))
            .where(Stats.hour >= since, Stats.touchpoint_id.in_(list(touchpoint_ids)))
            .group_by(Stats.touchpoint_id)
        )
        return {tp: last for tp, last in rows if last is not None}
