"""The enrichment of a click: user agent → device, OS, browser and bot flag; IP → country;
referrer → host and site; the daily visitor hash. Pure functions, tested without a database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.enrich import (
    Agent,
    CountryLookup,
    DeviceKind,
    Enricher,
    Enrichment,
    make_enricher,
    parse_agent,
    referrer_host,
    visitor_id,
)
from analytics.referrers import referrer_site
from tests.user_agents import DESKTOP as CHROME_WINDOWS
from tests.user_agents import GOOGLEBOT, SLACKBOT
from tests.user_agents import IPHONE as SAFARI_IPHONE

CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)
SAMSUNG_TV = (
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36"
)
FACEBOOK_IN_APP_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.107;FBBV/123;"
    "FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]"
)
INSTAGRAM_IN_APP_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 "
    "Instagram 337.0.0.35.102 Android"
)

GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
AHREFSBOT = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"
IMESSAGE = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
)


@pytest.mark.parametrize(
    ("user_agent", "device", "os", "browser"),
    [
        (CHROME_WINDOWS, "desktop", "Windows", "Chrome"),
        (SAFARI_IPHONE, "mobile", "iOS", "Mobile Safari"),
        (CHROME_ANDROID, "mobile", "Android", "Chrome Mobile"),
        (SAFARI_IPAD, "tablet", "iOS", "Mobile Safari"),
        (CHROME_ANDROID_TABLET, "tablet", "Android", "Chrome"),
        (FIREFOX_LINUX, "desktop", "Linux", "Firefox"),
        (EDGE_WINDOWS, "desktop", "Windows", "Edge"),
        (SAFARI_MAC, "desktop", "Mac OS X", "Safari"),
        (SAMSUNG_TV, "other", "Tizen", "Samsung Internet"),
        (FACEBOOK_IN_APP_IOS, "mobile", "iOS", "Facebook"),
        (INSTAGRAM_IN_APP_ANDROID, "mobile", "Android", "Instagram"),
    ],
)
def test_browsers_are_classified_by_device_os_and_browser(
    user_agent: str, device: DeviceKind, os: str, browser: str
) -> None:
    assert parse_agent(user_agent) == Agent(device, os, browser, is_bot=False, bot_reason=None)


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        ("", "empty-user-agent"),
        ("   ", "empty-user-agent"),
        (SLACKBOT, "preview:Slackbot"),
        ("Slack-ImgProxy (+https://api.slack.com/robots)", "preview:Slackbot"),
        ("WhatsApp/2.23.20.0 A", "preview:WhatsApp"),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "preview:facebookexternalhit",
        ),
        (IMESSAGE, "preview:iMessage"),
        ("Twitterbot/1.0", "preview:Twitterbot"),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "preview:Discordbot"),
        ("TelegramBot (like TwitterBot)", "preview:TelegramBot"),
        (
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "preview:LinkedInBot",
        ),
        (
            "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
            "skype-url-preview@microsoft.com",
            "preview:SkypeUriPreview",
        ),
        ("Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)", "preview:vkShare"),
        (GOOGLEBOT, "ua:Googlebot"),
        (GOOGLEBOT_SMARTPHONE, "ua:Googlebot"),
        (BINGBOT, "ua:bingbot"),
        (AHREFSBOT, "ua:AhrefsBot"),
        ("curl/8.5.0", "crawler:curl"),
        ("python-requests/2.32.3", "crawler:python-requests"),
        ("Wget/1.21.4", "crawler:Wget"),
    ],
)
def test_bots_are_flagged_with_the_rule_that_caught_them(user_agent: str, reason: str) -> None:
    agent = parse_agent(user_agent)

    assert agent.is_bot
    assert agent.device == "bot"
    assert agent.bot_reason == reason


def test_bots_keep_their_os_and_browser() -> None:
    agent = parse_agent(GOOGLEBOT_SMARTPHONE)

    assert (agent.os, agent.browser) == ("Android", "Googlebot")


@pytest.fixture(scope="module")
def countries() -> CountryLookup:
    return CountryLookup()


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("2001:4860:4860::8888", "US"),
        ("::ffff:8.8.8.8", "US"),
        (" 8.8.8.8 ", "US"),
        ("217.160.0.1", "DE"),
        ("80.67.169.12", "FR"),
        ("133.242.0.3", "JP"),
    ],
)
def test_public_addresses_resolve_to_their_country(
    countries: CountryLookup, ip: str, country: str
) -> None:
    assert countries.country(ip) == country


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "0.1.2.3",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "2001:db8::1",
    ],
)
def test_private_and_reserved_addresses_have_no_country(countries: CountryLookup, ip: str) -> None:
    assert countries.country(ip) is None


@pytest.mark.parametrize(
    "ip",
    [
        "not-an-ip",
        "",
        "8",
        "127.1",
        "1.2.3.4.5",
        "8.8.8.8/32",
        "[::1]",
        "\x00",
        "\uff18.\uff18.\uff18.\uff18",
        "9" * 500,
    ],
)
def test_malformed_addresses_have_no_country(countries: CountryLookup, ip: str) -> None:
    assert countries.country(ip) is None


def test_loading_the_lookup_leaves_the_environment_alone() -> None:
    # geoip2fast edits os.environ when first imported, so only a fresh interpreter shows it.
    script = (
        "import os\n"
        "os.environ['PYTHONWARNINGS'] = 'error'\n"
        "os.environ.pop('PYTHONIOENCODING', None)\n"
        "from analytics.enrich import CountryLookup\n"
        "CountryLookup()\n"
        "print(os.environ.get('PYTHONWARNINGS'), os.environ.get('PYTHONIOENCODING'))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )

    assert done.stdout.split() == ["error", "None"]


def test_an_mmdb_path_without_maxminddb_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A None entry in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "maxminddb", None)

    with pytest.raises(RuntimeError, match="pip install maxminddb"):
        CountryLookup(tmp_path / "GeoLite2-Country.mmdb")


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.google.com/search?q=flyer", "google.com"),
        ("https://WWW.Example.COM/", "example.com"),
        ("http://example.com:8080/a", "example.com"),
        ("https://user:secret@www.example.org./path", "example.org"),
        ("https://m.facebook.com/", "m.facebook.com"),
        ("https://t.co/abc", "t.co"),
        ("https://www.com/", "www.com"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("www.instagram.com/p/abc", "instagram.com"),
        ("http://[2001:db8::1]:80/x", "2001:db8::1"),
        ("https://bücher.de/", "xn--bcher-kva.de"),
        ("", None),
        ("   ", None),
        ("about:blank", None),
        ("javascript:alert(1)", None),
        ("not a url", None),
        ("https://exa mple.com/", None),
        ("http://[::1", None),
        ("https://a..b/", None),
        ("http://-bad-.com/", None),
        ("https:///path-only", None),
    ],
)
def test_referrer_host_is_the_bare_lowercased_host(referrer: str, host: str | None) -> None:
    assert referrer_host(referrer) == host


SALT = bytes(range(32))


def test_visitor_id_is_stable_for_the_same_visitor_on_the_same_day() -> None:
    assert visitor_id(SALT, "203.0.113.9", CHROME_WINDOWS) == visitor_id(
        SALT, "203.0.113.9", CHROME_WINDOWS
    )


@pytest.mark.parametrize(
    ("salt", "ip", "user_agent"),
    [
        (bytes(range(1, 33)), "203.0.113.9", CHROME_WINDOWS),
        (SALT, "203.0.113.10", CHROME_WINDOWS),
        (SALT, "203.0.113.9", FIREFOX_LINUX),
    ],
)
def test_visitor_id_changes_with_salt_ip_or_user_agent(
    salt: bytes, ip: str, user_agent: str
) -> None:
    assert visitor_id(salt, ip, user_agent) != visitor_id(SALT, "203.0.113.9", CHROME_WINDOWS)


@pytest.mark.parametrize("ip", ["203.0.113.9", "2001:db8::42"])
def test_visitor_id_is_32_hex_characters_without_the_ip(ip: str) -> None:
    vid = visitor_id(SALT, ip, CHROME_WINDOWS)

    assert re.fullmatch(r"[0-9a-f]{32}", vid)
    assert ip not in vid


def test_visitor_id_does_not_run_into_the_user_agent() -> None:
    # The separator keeps "1.2.3.4" + "5 agent" apart from "1.2.3.45" + " agent".
    assert visitor_id(SALT, "1.2.3.4", "5 agent") != visitor_id(SALT, "1.2.3.45", " agent")


def test_visitor_id_refuses_an_empty_salt() -> None:
    with pytest.raises(ValueError, match="salt"):
        visitor_id(b"", "203.0.113.9", CHROME_WINDOWS)


def test_enrich_combines_agent_country_referrer_and_visitor(countries: CountryLookup) -> None:
    enrichment = Enricher(countries).enrich(
        "8.8.8.8", SAFARI_IPHONE, "https://www.instagram.com/", SALT
    )

    assert enrichment == Enrichment(
        device="mobile",
        os="iOS",
        browser="Mobile Safari",
        is_bot=False,
        bot_reason=None,
        country="US",
        scanner=None,
        referrer_host="instagram.com",
        referrer_site="Instagram",
        visitor_id=visitor_id(SALT, "8.8.8.8", SAFARI_IPHONE),
    )
    assert "8.8.8.8" not in repr(enrichment)


@pytest.mark.parametrize(("ip", "operator"), [
    ("40.107.22.10", "microsoft"),  # Exchange Online Protection, where Safe Links opens links
    ("2a01:111:f403:c000::1", "microsoft"),
    ("::ffff:40.92.1.1", "microsoft"),
    ("148.163.150.1", "proofpoint"),
    ("205.139.110.1", "mimecast"),
    ("194.104.108.1", "mimecast"),
    ("64.235.150.1", "barracuda"),
    # Microsoft's other networks (Azure, its offices), a web proxy carrying people's browsing,
    # a cloud and a resolver: people, or other bots, never a mail scanner.
    ("20.42.0.1", None),
    ("13.107.6.152", None),
    ("165.225.0.1", None),
    ("52.223.0.1", None),
    ("8.8.8.8", None),
    ("10.0.0.1", None),
])
def test_mail_scanners_are_known_by_their_network(
    countries: CountryLookup, ip: str, operator: str | None
) -> None:
    assert countries.place(ip).scanner == operator


def test_enrich_keeps_bots_flagged(countries: CountryLookup) -> None:
    enrichment = Enricher(countries).enrich("10.0.0.1", "WhatsApp/2.23.20.0 A", "", SALT)

    assert enrichment.is_bot
    assert enrichment.bot_reason == "preview:WhatsApp"
    assert enrichment.country is None
    assert enrichment.referrer_host is None
    assert enrichment.referrer_site is None


@pytest.mark.parametrize(
    ("referrer", "site"),
    [
        ("https://www.facebook.com/groups/x", "Facebook"),
        ("https://m.facebook.com/story.php", "Facebook"),
        ("https://l.facebook.com/l.php?u=x", "Facebook"),
        ("https://lm.facebook.com/l.php?u=x", "Facebook"),
        ("https://www.google.co.uk/search?q=x", "Google"),
        ("https://mail.google.com/mail/u/0/", "Gmail"),
        ("https://t.co/abc", "Twitter"),
        ("https://l.instagram.com/?u=x", "Instagram"),
        ("https://lnkd.in/abc", "LinkedIn"),
        ("https://duckduckgo.com/", "DuckDuckGo"),
        ("https://www.shop.example.com/a", "shop.example.com"),  # not on the list: the host
        ("https://facebook.com.evil.example/", "facebook.com.evil.example"),
        ("https://notfacebook.com/", "notfacebook.com"),
        ("", None),
        ("not a url", None),
    ],
)
def test_referrers_are_grouped_by_site_from_the_maintained_list(
    countries: CountryLookup, referrer: str, site: str | None
) -> None:
    enrichment = Enricher(countries).enrich("10.0.0.1", SAFARI_IPHONE, referrer, SALT)

    assert enrichment.referrer_site == site
    assert referrer_site(referrer_host(referrer)) == site


def test_the_enricher_opens_its_country_data_on_first_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A web process that hands its clicks to Redis never needs the data: building opens nothing.
    monkeypatch.setitem(sys.modules, "maxminddb", None)
    enricher = make_enricher(str(tmp_path / "GeoLite2-Country.mmdb"))

    with pytest.raises(RuntimeError, match="pip install maxminddb"):
        enricher.enrich("8.8.8.8", SAFARI_IPHONE, "", SALT)
    with pytest.raises(RuntimeError, match="pip install maxminddb"):
        enricher.load()
