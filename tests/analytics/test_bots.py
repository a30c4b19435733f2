"""Bot detection: every kind of bot that reaches short links is flagged, with the rule that caught
it, and no browser a customer uses is, in-app browsers included; at the redirect (no journey
cookie) and in the clicks ingest stores. User agents are as these clients send them."""

from __future__ import annotations

import importlib.resources
import json
import re
from collections import Counter
from collections.abc import Callable

import pytest
from crawlerdetect import CrawlerDetect
from flask import Flask
from sqlalchemy import select

from analytics.bots import MAX_REASON, PatternSet, crawlerdetect_match
from analytics.enrich import is_bot, parse_agent
from analytics.models import Click
from analytics.runtime import runtime

BOTS: dict[str, str] = {
    # uptime monitors
    "UptimeRobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom": "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Pingdom page speed": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu "
        "Chromium/59.0.3071.109 Chrome/59.0.3071.109 Safari/537.36 PingdomPageSpeed/1.0 "
        "(pingbot/2.0; +http://www.pingdom.com/)"
    ),
    "StatusCake": (
        "Mozilla/5.0 (Windows NT 6.2; WOW64) AppleWebKit/537.4 (KHTML, like Gecko) Chrome/98 "
        "Safari/537.4 (StatusCake)"
    ),
    "StatusCake uptime": "StatusCake_Uptime_Checker/1.0",
    "Datadog synthetics": "Datadog/Synthetics",
    "Datadog synthetics browser": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 DatadogSynthetics"
    ),
    "Datadog agent": "Datadog Agent/5.10.1",
    # security scanners
    "Nessus": "Mozilla/5.0 (compatible; Nessus; http://www.nessus.org)",
    "Nmap": "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "sqlmap": "sqlmap/1.7.8#stable (https://sqlmap.org)",
    "zgrab": "Mozilla/5.0 zgrab/0.x",
    "Nuclei": "Nuclei (@pdiscoveryio)",
    "Nuclei default": "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    # AI crawlers and assistants
    "GPTBot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot)"
    ),
    "ClaudeBot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
        "+claudebot@anthropic.com)"
    ),
    "PerplexityBot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; "
        "+https://perplexity.ai/perplexitybot)"
    ),
    "ChatGPT-User": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
        "+https://openai.com/bot"
    ),
    # Google's robots.txt token for AI training, as crawler lists file it.
    "Google-Extended": "Google-Extended",
    "Bytespider": (
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
        "Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)"
    ),
    # feed readers
    "Feedly": (
        "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 16 subscribers; like FeedFetcher-Google)"
    ),
    "Feedbin": "Feedbin feed-id:2005098 - 2 subscribers",
    "NewsBlur": (
        "NewsBlur Feed Fetcher - 7 subscribers - http://www.newsblur.com/site/1948420/example "
        "(Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_1) AppleWebKit/534.48.3 (KHTML, like "
        "Gecko) Version/5.1 Safari/534.48.3)"
    ),
    # mail image proxies
    "Gmail image proxy": (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    ),
    "Yahoo mail proxy": "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    # cloud health checks
    "ELB-HealthChecker": "ELB-HealthChecker/2.0",
    "kube-probe": "kube-probe/1.29",
    "GoogleHC": "GoogleHC/1.0",
    "Route 53": "Amazon-Route53-Health-Check-Service (ref 8f4e5a1c-7d1b-4b5e; report http://amzn.to/1vsZADi)",
    # HTTP libraries on their own
    "curl": "curl/8.5.0",
    "Wget": "Wget/1.21.4",
    "python-requests": "python-requests/2.32.3",
    "Go-http-client": "Go-http-client/1.1",
    "okhttp": "okhttp/4.12.0",
}

BROWSERS: dict[str, str] = {
    "Chrome Windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    "Chrome Mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    "Chrome Android": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36"
    ),
    "Chrome iOS": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"
    ),
    "Edge Windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
    ),
    "Edge Android": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0"
    ),
    "Firefox Windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    ),
    "Firefox Linux": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Firefox Android": "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
    "Firefox iOS": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15"
    ),
    "Safari Mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15"
    ),
    "Safari iPhone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1.1 Mobile/15E148 Safari/604.1"
    ),
    "Safari iPad": (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1"
    ),
    "Samsung Internet": (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36"
    ),
    "Google app iOS": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) GSA/343.0.695551749 Mobile/15E148 Safari/604.1"
    ),
    "Instagram iOS": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Mobile/15E148 Instagram 339.0.3.12.91 (iPhone14,5; iOS 17_5_1; en_US; en; "
        "scale=3.00; 1170x2532; 618986853; IABMV/1)"
    ),
    "Instagram Android": (
        "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 Instagram "
        "406.0.0.58.159 Android (35/15; 480dpi; 1080x2412; OnePlus; CPH2557; OP5958L1; qcom; "
        "en_GB; 829498530)"
    ),
    "Facebook iOS": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.107;FBBV/620331428;FBDV/iPhone15,2;"
        "FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/622380424]"
    ),
    "Facebook Android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 "
        "[FB_IAB/FB4A;FBAV/470.0.0.46.75;]"
    ),
    "TikTok iOS": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 musical_ly_35.3.0 JsSdk/2.0 NetType/WIFI Channel/App Store "
        "ByteLocale/en Region/US ByteFullLocale/en isDarkMode/0 WKWebView/1 RevealType/Dialog "
        "BytedanceWebview/d8a21c6"
    ),
    "TikTok Android": (
        "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 trill_350402 "
        "JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/trill app_version/35.4.2 ByteLocale/en "
        "ByteFullLocale/en Region/US AppId/1180 Spark/1.5.9.1-bugfix AppVersion/35.4.2 "
        "BytedanceWebview/d8a21c6"
    ),
    "LinkedIn Android": (
        "Mozilla/5.0 (Linux; Android 15; SM-A146P Build/AP3A.240905.015.A2; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/140.0.7339.207 Mobile Safari/537.36 "
        "[LinkedInApp]/2.200.63"
    ),
    "Snapchat iOS": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 Snapchat/13.1.0.38 (like Safari/8618.2.12.10.3, panda)"
    ),
    # Phones whose model reads like a bot's name.
    "Android phone 'XBot Junior'": (
        "Mozilla/5.0 (Linux; Android 8.1.0; XBot Junior) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/87.0.4280.101 Mobile Safari/537.36"
    ),
    "Android tablet 'Spider 8'": (
        "Mozilla/5.0 (Linux; Android 13; Spider 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    ),
    "Android phone 'VR BOT 552'": (
        "Mozilla/5.0 (Linux; Android 6.0; VR BOT 552) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/72.0.3626.121 Mobile Safari/537.36"
    ),
}


@pytest.mark.parametrize("agent", list(BOTS.values()), ids=list(BOTS))
def test_every_kind_of_bot_is_flagged_with_a_reason_that_fits_its_column(agent: str) -> None:
    found = parse_agent(agent)

    assert found.is_bot and found.device == "bot"
    assert found.bot_reason is not None and len(found.bot_reason) <= MAX_REASON
    assert is_bot(agent)


@pytest.mark.parametrize("agent", list(BROWSERS.values()), ids=list(BROWSERS))
def test_browsers_and_in_app_browsers_are_not_flagged(agent: str) -> None:
    found = parse_agent(agent)

    assert (found.is_bot, found.bot_reason) == (False, None)
    assert found.device in ("desktop", "mobile", "tablet")
    assert not is_bot(agent)


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("Datadog/Synthetics", "unrecognised-agent"),
        ("Arachni/v1.5.1", "unrecognised-agent"),
        ("Blackbox Exporter/0.24.0", "crawler-user-agents:Blackbox Exporter/"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; "
            "Google-Sites-Thumbnails) Chrome/120.0.6099.71 Safari/537.36",
            "engine-comment:Google-Sites-Thumbnails",
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2272.118 Safari/537.36 "
            "(compatible; Google-Shopping-Quality +http://www.google.com/merchants/tos/)",
            "contact:url",
        ),
        ("RSSRadio (Push Notification Scanner;support@dorada.co.uk)", "contact:email"),
        ("Mozilla/5.0 (compatible; Nessus; http://www.nessus.org)", "crawler:Nessus"),
        ("kube-probe/1.29", "crawler:kube-probe"),
    ],
)
def test_the_new_rules_name_themselves(agent: str, reason: str) -> None:
    assert parse_agent(agent).bot_reason == reason


def test_a_long_match_is_cropped_to_the_column() -> None:
    agent = "Mozilla/5.0 (compatible; " + "a" * 100 + "bot/1.0)"

    reason = parse_agent(agent).bot_reason

    assert reason is not None and len(reason) == MAX_REASON
    assert reason.startswith("crawler:aaaa")


def _fake_useragent_browsers() -> list[str]:
    source = importlib.resources.files("fake_useragent").joinpath("data/browsers.jsonl")
    lines = source.read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["useragent"] for line in lines if line.strip()))


def _crawler_list_instances() -> list[str]:
    source = importlib.resources.files("crawleruseragents").joinpath("crawler-user-agents.json")
    entries = json.loads(source.read_text(encoding="utf-8"))
    return list(dict.fromkeys(a for entry in entries for a in entry.get("instances", [])))


def test_no_browser_of_fake_useragents_real_traffic_list_is_flagged() -> None:
    flagged = {a: parse_agent(a).bot_reason for a in _fake_useragent_browsers()}

    assert len(flagged) > 500
    assert {a: r for a, r in flagged.items() if r is not None} == {}


def test_the_quick_crawlerdetect_answers_as_crawlerdetect_does() -> None:
    agents = _crawler_list_instances() + _fake_useragent_browsers()

    def answer(agent: str) -> str | None:
        detector = CrawlerDetect(user_agent=agent)
        return detector.get_matches() if detector.is_crawler() else None

    differ = [(a, answer(a), crawlerdetect_match(a)) for a in agents]
    assert [d for d in differ if d[1] != d[2]] == []
    assert Counter(d[1] is not None for d in differ)[True] > 1000


PATTERNS = [
    r"^Ruby|Ruby\/[0-9]",
    r"[a-z0-9\-_]*(bot|crawl|spider)",
    r"Yandex(?!Search)",
    r"(^| )sentry\/",
    r"[wW]get",
    r"AdsBot-Google([^-]|$)",
    r"Automaton|Newsify Feed Fetcher",
    r"bots?\b",
    r"^Java\/",
    r"^b0t$",
    r"Goo+gle",
    r"(?:sistrix|SISTRIX) [cC]rawler",
    r"Mozilla\/5\.0 \(compatible\)$",
]
TEXTS = [
    "Ruby/3.2", "my Ruby", "Ruby", "x Googlebot/2.1", "a_b-crawler", "YandexBot", "YandexSearch",
    "sentry/1", "Xsentry/1", " sentry/1", "Wget/1.2", "wget", "AdsBot-Google",
    "AdsBot-Google-Mobile", "Automaton 1", "Newsify Feed Fetcher", "bots", "robotics", "Java/17",
    "a Java/17", "b0t", "b0t2", "Gooogle", "Ggle", "SISTRIX Crawler", "sistrix crawler",
    "Mozilla/5.0 (compatible)", "Mozilla/5.0 (compatible) x", "", "nothing here", "BOT",
    "Spider-Man",
]


@pytest.mark.parametrize("flags", [0, re.IGNORECASE], ids=["case-sensitive", "ignoring-case"])
@pytest.mark.parametrize("text", TEXTS)
def test_a_pattern_set_finds_what_the_alternation_finds(text: str, flags: int) -> None:
    alternation = re.compile("|".join(f"(?:{p})" for p in PATTERNS), flags)
    found = alternation.search(text)

    assert PatternSet(PATTERNS, flags).find(text) == (found.group() if found else None)


# --- at the redirect and through ingest -----------------------------------------------------------

NEW_BOTS = {  # bots the rules before this detector let through, and the rule that catches each
    "Datadog/Synthetics": "unrecognised-agent",
    "Google-Extended": "crawler-user-agents:Google-Extended",
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; "
        "Google-Sites-Thumbnails) Chrome/120.0.6099.71 Safari/537.36"
    ): "engine-comment:Google-Sites-Thumbnails",
    "RSSRadio (Push Notification Scanner;support@dorada.co.uk)": "contact:email",
}
# In-app browsers, and a tablet that the rules before this detector called a bot.
PEOPLE = [
    BROWSERS[name]
    for name in ("Instagram Android", "Facebook iOS", "TikTok Android", "Android tablet 'Spider 8'")
]


@pytest.fixture
def journey_app(make_app: Callable[..., Flask], make_flyer: Callable[[Flask], None]) -> Flask:
    """An app that follows journeys with a cookie, with the link /flyer."""
    app = make_app(journeys="cookie")
    make_flyer(app)
    return app


def test_bots_get_no_journey_cookie_and_are_stored_flagged_with_their_reason(
    journey_app: Flask,
) -> None:
    cookies = {}
    for i, agent in enumerate([*NEW_BOTS, *PEOPLE]):
        response = journey_app.test_client().get(
            "/flyer", headers={"User-Agent": agent}, environ_base={"REMOTE_ADDR": f"81.2.69.{i}"}
        )
        assert response.status_code == 302
        cookies[agent] = "tl_j=" in response.headers.get("Set-Cookie", "")
    rt = runtime(journey_app)
    rt.sink.flush()  # type: ignore[attr-defined]

    assert cookies == {agent: agent in PEOPLE for agent in cookies}
    with rt.sessions() as session:
        rows = session.execute(select(Click.is_bot, Click.bot_reason))
        stored = Counter(tuple(row) for row in rows)
    assert stored == Counter((True, reason) for reason in NEW_BOTS.values()) + Counter(
        {(False, None): len(PEOPLE)}
    )
