"""A demo workspace: a dozen touchpoints across channels and stages, each with its links, and a
demo account to sign in to the pages with."""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shortener import users
from shortener.models import Coupon, Link, Placement, Role, Stage, Touchpoint, User

# Named in the README and printed by `touchlink run`: a demo, not a secret.
DEMO_EMAIL = "demo@touchlink.test"
DEMO_PASSWORD = "touchlink-demo"  # noqa: S105

# (stage, slug, destination, campaign)
DemoLink = tuple[str, str, str, str | None]
# key, name, channel, kind, exposure, links
DemoTouchpoint = tuple[str, str, str, str, int | None, tuple[DemoLink, ...]]

DEMO: tuple[DemoTouchpoint, ...] = (
    ("instagram-bio", "Instagram bio", "digital", "social", None, (
        ("awareness", "insta", "https://shop.example.com/", "spring-launch"),)),
    ("facebook-ads", "Facebook ads", "digital", "advertising", 50_000, (
        ("awareness", "fb-spring", "https://shop.example.com/spring", "spring-launch"),
        ("consideration", "fb-compare", "https://shop.example.com/compare", "spring-launch"))),
    ("newsletter", "Monthly newsletter", "digital", "email", 12_000, (
        ("consideration", "news-nov", "https://shop.example.com/new-in", "november"),
        ("post-purchase", "news-care", "https://shop.example.com/care-guide", None))),
    ("follow-up-email", "Order follow-up email", "digital", "email", 3_000, (
        ("post-purchase", "thanks", "https://shop.example.com/review", None),)),
    ("website-banner", "Website home banner", "digital", "web", None, (
        ("decision", "banner", "https://shop.example.com/checkout/offer", "spring-launch"),)),
    ("store-flyer-paris", "Store flyer, Paris", "physical", "advertising", 5_000, (
        ("awareness", "flyer-paris", "https://shop.example.com/stores/paris", "spring-launch"),)),
    ("product-packaging", "Product packaging", "physical", "delivery", 8_000, (
        ("post-purchase", "box", "https://shop.example.com/register", None),
        ("support", "box-help", "https://help.example.com/setup", None))),
    ("shop-window-poster", "Shop window poster", "physical", "signage", None, (
        ("awareness", "window", "https://shop.example.com/spring", "spring-launch"),)),
    ("trade-fair-stand", "Trade fair stand", "physical", "event", 1_200, (
        ("consideration", "fair", "https://shop.example.com/catalogue", None),)),
    ("help-desk-faq", "Help desk FAQ", "human", "support", None, (
        ("support", "faq", "https://help.example.com/faq", None),)),
    ("sales-rep-card", "Sales rep business card", "human", "sales", 500, (
        ("decision", "rep", "https://shop.example.com/book-a-call", None),)),
    ("click-and-collect", "Click & collect counter", "hybrid", "checkout", None, (
        ("decision", "collect", "https://shop.example.com/collect", None),
        ("post-purchase", "collect-survey", "https://survey.example.com/collect", None))),
)


# A code printed on the flyer, for the till's sales; the collect counter asks one question.
COUPONS = {"store-flyer-paris": "PARIS10"}
SURVEYS = {
    "collect-survey": {
        "survey_kind": "nps", "survey_then": "thanks",
        "survey_question": "How likely are you to recommend click & collect to a friend?",
    },
}


def seed_demo(session: Session, *, domain: str, since: datetime, zone: tzinfo) -> int:
    """Add the demo touchpoints and links to an empty workspace, as made at `since` (its clicks
    come after), each exposure a placement of that day, half of it two weeks later for printed
    touchpoints; returns how many touchpoints."""
    if session.scalar(select(func.count()).select_from(Touchpoint)):
        return 0
    stages = {s.key: s for s in session.scalars(select(Stage))}
    first_day = since.astimezone(zone).date()
    for key, name, channel, kind, exposure, links in DEMO:
        touchpoint = Touchpoint(key=key, name=name, channel=channel, kind=kind, created_at=since)
        if key in COUPONS:
            touchpoint.coupons = [Coupon(code=COUPONS[key])]
        session.add(touchpoint)
        if exposure is not None:
            session.add_all(_placements(touchpoint, exposure, channel, first_day))
        for stage_key, slug, destination, campaign in links:
            stage = stages.get(stage_key) or next(iter(stages.values()))
            session.add(
                Link(
                    domain=domain,
                    slug=slug,
                    destination=destination,
                    touchpoint=touchpoint,
                    stage=stage,
                    campaign=campaign,
                    title=f"{name} ({stage.name})",
                    created_at=since,
                    # Sales come of the decision stage's links; the shop is told their clicks.
                    track_conversions=stage_key in ("decision", "consideration"),
                    **SURVEYS.get(slug, {}),
                )
            )
    session.flush()
    return len(DEMO)


def _placements(
    touchpoint: Touchpoint, exposure: int, channel: str, first_day: date
) -> list[Placement]:
    if channel != "physical":
        return [Placement(touchpoint=touchpoint, count=exposure, starts_on=first_day)]
    # Print runs go out in batches: the first half at once, the rest two weeks on.
    half = exposure // 2
    return [
        Placement(touchpoint=touchpoint, count=half, starts_on=first_day, note="first print run"),
        Placement(
            touchpoint=touchpoint,
            count=exposure - half,
            starts_on=first_day + timedelta(days=14),
            note="second print run",
        ),
    ]


def seed_demo_user(session: Session) -> bool:
    """Create the demo admin (DEMO_EMAIL, DEMO_PASSWORD) if there is no user at all."""
    if users.count_users(session):
        return False
    users.create_user(session, email=DEMO_EMAIL, role=Role.ADMIN, password=DEMO_PASSWORD)
    return True


def has_demo_user(session: Session) -> bool:
    return session.scalar(select(User.id).where(User.email == DEMO_EMAIL)) is not None
