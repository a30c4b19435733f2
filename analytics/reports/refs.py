"""How reports name a touchpoint or a stage in their rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TouchpointRef:
    key: str
    name: str
    channel: str


@dataclass(frozen=True, slots=True)
class StageRef:
    key: str
    name: str
    position: int
