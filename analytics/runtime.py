"""The whole runtime, as the click side sees it: the link side's parts and its own."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from analytics.enrich import Enricher
from analytics.journeys import JourneyKeys
from analytics.metrics import Metrics
from shortener import runtime as link_runtime
from shortener.runtime import LinkRuntime


@dataclass(frozen=True, slots=True)
class Runtime(LinkRuntime):
    """Everything a process keeps, built once by the composition root (`wsgi.build_runtime`)."""

    enricher: Enricher
    metrics: Metrics
    journey_keys: JourneyKeys


def runtime(app: Flask | None = None) -> Runtime:
    rt = link_runtime.runtime(app)
    assert isinstance(rt, Runtime), "the app was not built by wsgi.create_app"
    return rt
