"""Click enrichment: user agent → device/os/browser/bot, IP → country, referrer host, visitor id.

Runs in the ingest worker, never on the redirect path. User agents and IP addresses repeat a lot
within a stream of clicks, so every expensive step is behind an LRU cache.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import ipaddress
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import user_agents

from analytics import scanners
from analytics.bots import bot_reason
from analytics.referrers import referrer_site
from shortener.clicks import MAX_USER_AGENT
from shortener.keyed_hash import keyed_hash

DeviceKind = Literal["desktop", "mobile", "tablet", "bot", "other"]

AGENT_CACHE_SIZE = 50_000
COUNTRY_CACHE_SIZE = 65_536
REFERRER_CACHE_SIZE = 16_384

# Parsing cost grows with length; the capture side already crops, this only bounds the worst case.
_MAX_AGENT_LENGTH = 1024

_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # ASCII digits only: \d is Unicode
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# IPv4 ranges that are not globally routable (what ipaddress' is_global and is_multicast say),
# as (network, mask) integers.
_NOT_GLOBAL_V4: tuple[tuple[int, int], ...] = tuple(
    (int(net.network_address), int(net.netmask))
    for net in map(
        ipaddress.IPv4Network,
        (
            "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
            "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
            "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        ),
    )
)

# The bundled file with IPv6 and autonomous systems too (the default one has IPv4 countries only):
# one lookup gives the country and, for analytics.scanners, the network's operator.
_GEOIP2FAST_DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"


@dataclass(frozen=True, slots=True)
class Agent:
    """What a user agent string says about the client that sent it."""

    device: DeviceKind
    os: str
    browser: str
    is_bot: bool
    bot_reason: str | None


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Everything the ingest worker stores about a click in place of its IP and user agent."""

    device: DeviceKind
    os: str
    browser: str
    is_bot: bool
    bot_reason: str | None
    country: str | None
    scanner: str | None  # the mail scanner operator whose network the click came from
    referrer_host: str | None
    referrer_site: str | None
    visitor_id: str


def is_bot(user_agent: str) -> bool:
    """Whether a user agent is a bot's, as ingest will read it (cropped as capture crops it);
    what the redirect asks before it sets a journey cookie."""
    return parse_agent(user_agent[:MAX_USER_AGENT]).is_bot


@functools.lru_cache(maxsize=AGENT_CACHE_SIZE)
def parse_agent(user_agent: str) -> Agent:
    """Classify a user agent; a bot is flagged with the first rule that caught it, never dropped."""
    agent = user_agent.strip()[:_MAX_AGENT_LENGTH]
    if not agent:
        return Agent("bot", "Other", "Other", is_bot=True, bot_reason="empty-user-agent")
    parsed = user_agents.parse(agent)
    os_family = str(parsed.os.family)
    browser_family = str(parsed.browser.family)
    reason = _bot_reason(agent, parsed, browser_family)
    if reason is not None:
        return Agent("bot", os_family, browser_family, is_bot=True, bot_reason=reason)
    return Agent(_device_kind(parsed), os_family, browser_family, is_bot=False, bot_reason=None)


def _bot_reason(agent: str, parsed: Any, browser_family: str) -> str | None:
    families = (str(parsed.os.family), browser_family, str(parsed.device.family))
    return bot_reason(agent, spider=bool(parsed.is_bot), families=families)


def _device_kind(parsed: Any) -> DeviceKind:
    # Tablets first: user_agents can also call a tablet mobile because of its browser family.
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    if parsed.is_pc:
        return "desktop"
    return "other"


class Place(NamedTuple):  # a tuple: one is made for every new address
    """What is kept of an IP address: its country and its network's mail scanner operator."""

    country: str | None
    scanner: str | None


_NOWHERE = Place(None, None)
# A resolver: the country code and the autonomous system's name of an address.
Resolve = Callable[[str], tuple[str | None, str | None]]


class CountryLookup:
    """IP address → ISO 3166 alpha-2 country code (and mail scanner operator) from offline data;
    build one per process.

    The default is the geoip2fast data bundled with the package (IPv4 and IPv6, with autonomous
    systems; loaded in about 0.2 s, about 85 MiB). With `mmdb_path`, countries come from a
    MaxMind-format database read with `maxminddb`, operators still from geoip2fast's. geoip2fast
    keeps its data in module globals, so every instance in a process shares one copy.
    """

    __slots__ = ("_cached", "_resolve")

    def __init__(
        self,
        mmdb_path: str | os.PathLike[str] | None = None,
        *,
        cache_size: int = COUNTRY_CACHE_SIZE,
    ) -> None:
        self._resolve = _open_geoip2fast() if mmdb_path is None else _open_mmdb(mmdb_path)
        self._cached = functools.lru_cache(maxsize=cache_size)(self._place_uncached)

    def country(self, ip: str) -> str | None:
        """The country code of `ip`, or None for private, reserved, unknown or malformed input."""
        return self._cached(ip).country

    def place(self, ip: str) -> Place:
        return self._cached(ip)

    def _place_uncached(self, ip: str) -> Place:
        ip = ip.strip()
        if _DOTTED_QUAD.fullmatch(ip):
            # The common case, about twice as fast as ipaddress' parse and is_global checks.
            number = int.from_bytes(socket.inet_aton(ip), "big")
            if any(number & mask == network for network, mask in _NOT_GLOBAL_V4):
                return _NOWHERE
            return self._place(number, 4, ip)
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return _NOWHERE
        # Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return _NOWHERE
        return self._place(int(address), address.version, str(address))

    def _place(self, number: int, version: int, ip: str) -> Place:
        code, as_name = self._resolve(ip)
        return Place(self._checked(code), scanners.operator(number, version, as_name))

    @staticmethod
    def _checked(code: str | None) -> str | None:
        if code is None or len(code) != 2 or not code.isascii() or not code.isalpha():
            return None
        return code.upper()


@functools.cache  # the data is read once per process, however many lookups are built
def _open_geoip2fast() -> Resolve:
    geoip2fast = _import_geoip2fast()
    data_file = importlib.resources.files("geoip2fast").joinpath(_GEOIP2FAST_DATA_FILE)
    database = geoip2fast.GeoIP2Fast(geoip2fast_data_file=str(data_file))

    def resolve(ip: str) -> tuple[str | None, str | None]:
        detail = database.lookup(ip)
        # Reserved ranges and misses come back as placeholder codes ("--", "", "01"…).
        if detail.is_private:
            return None, None
        return str(detail.country_code), str(detail.asn_name or "") or None

    return resolve


def _import_geoip2fast() -> Any:
    # Importing geoip2fast rewrites PYTHONWARNINGS and PYTHONIOENCODING in os.environ, which every
    # later child process would inherit; put them back as they were.
    names = ("PYTHONWARNINGS", "PYTHONIOENCODING")
    saved = {name: os.environ.get(name) for name in names}
    try:
        return importlib.import_module("geoip2fast")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _open_mmdb(path: str | os.PathLike[str]) -> Resolve:
    try:
        maxminddb = importlib.import_module("maxminddb")
    except ImportError as error:
        raise RuntimeError(
            f"Reading the MaxMind database {os.fspath(path)!r} needs the maxminddb package: "
            "pip install maxminddb"
        ) from error
    reader = maxminddb.open_database(os.fspath(path))
    networks = _open_geoip2fast()  # for the autonomous systems a country database lacks

    def resolve(ip: str) -> tuple[str | None, str | None]:
        try:
            record = reader.get(ip)
        except ValueError:
            # An IPv6 address asked of an IPv4-only database.
            record = None
        return _mmdb_country(record), networks(ip)[1]

    return resolve


def _mmdb_country(record: object) -> str | None:
    if not isinstance(record, dict):
        return None
    # GeoLite2 and DB-IP nest the code under "country", falling back to where the block is
    # registered; IPinfo's databases put it at the top level.
    for key in ("country", "registered_country"):
        section = record.get(key)
        if isinstance(section, dict) and isinstance(section.get("iso_code"), str):
            return str(section["iso_code"])
    code = record.get("country_code")
    return code if isinstance(code, str) else None


def referrer_host(referrer: str) -> str | None:
    """The referrer's host, lowercased, without port or a leading "www."; None if there is none."""
    text = referrer.strip()
    if not text:
        return None
    if "://" not in text:
        # Some clients send a bare host; without "//" urlsplit would read it as a path.
        text = "//" + text
    try:
        parts = urlsplit(text)
        # Reading the port rejects non-URLs such as "about:blank" that parse as host:junk.
        _ = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host:
        return None
    host = host.rstrip(".")
    if not host.isascii():
        # Browsers send the ASCII form; a client that did not is grouped with them.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    if labels[0] == "www" and len(labels) > 2:
        return host[4:]
    return host


def visitor_id(salt: bytes, ip: str, user_agent: str) -> str:
    """A 32-hex-character id for one visitor on one day: HMAC-SHA256(salt, ip + "\\n" + user agent).

    The salt rotates daily and is deleted after 48 hours (managed elsewhere), so ids cannot be
    linked across days and the raw IP, which is never stored, cannot be recovered from them.
    """
    if not salt:
        raise ValueError("visitor_id needs a non-empty salt")
    message = f"{ip}\n{user_agent}".encode("utf-8", "surrogatepass")
    return keyed_hash(salt).digest(message)[:16].hex()


class Enricher:
    """Turns the raw fields of a click into what is stored; one per process.

    Given a way to open the country lookup rather than the lookup itself, it opens it on the
    first click it enriches: a web process that hands its clicks to Redis never loads the data.
    """

    __slots__ = ("_countries", "_lock", "_open")

    def __init__(self, countries: CountryLookup | Callable[[], CountryLookup]) -> None:
        self._countries = countries if isinstance(countries, CountryLookup) else None
        self._open = None if isinstance(countries, CountryLookup) else countries
        self._lock = threading.Lock()

    def load(self) -> None:
        """Open the country data now, so that a bad TOUCHLINK_GEOIP_MMDB stops a worker at start
        rather than failing its clicks."""
        self._lookup()

    def _lookup(self) -> CountryLookup:
        if self._countries is None:
            with self._lock:
                if self._countries is None:
                    assert self._open is not None
                    self._countries = self._open()
        return self._countries

    def enrich(self, ip: str, user_agent: str, referrer: str, salt: bytes) -> Enrichment:
        """Enrich one click; the IP leaves only as a country and a salted visitor id."""
        agent = parse_agent(user_agent)
        host, site = _referrer(referrer)
        place = self._lookup().place(ip)
        return Enrichment(
            device=agent.device,
            os=agent.os,
            browser=agent.browser,
            is_bot=agent.is_bot,
            bot_reason=agent.bot_reason,
            country=place.country,
            scanner=place.scanner,
            referrer_host=host,
            referrer_site=site,
            visitor_id=visitor_id(salt, ip, user_agent),
        )


@functools.lru_cache(maxsize=REFERRER_CACHE_SIZE)  # most clicks come from a few referrers
def _referrer(referrer: str) -> tuple[str | None, str | None]:
    host = referrer_host(referrer)
    return host, referrer_site(host)


def make_enricher(mmdb_path: str | None = None) -> Enricher:
    """An enricher over the bundled country data, or over a MaxMind file when one is configured;
    the data is opened on first use."""
    return Enricher(lambda: CountryLookup(mmdb_path))
