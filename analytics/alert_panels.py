"""The dashboard's panel of open alerts (analytics.alerts), newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.alerts import list_alerts
from analytics.models import AlertRule

SHOWN = 20


def alert_panel(session: Session) -> dict[str, Any]:
    """The open alerts (at most SHOWN, with how many there are) and whether any rule exists."""
    found = list_alerts(session, state="open", limit=SHOWN + 1)
    return {
        "open_alerts": found[:SHOWN],
        "more_alerts": len(found) > SHOWN,
        "alert_rules": session.scalar(select(func.count()).select_from(AlertRule)) or 0,
    }
