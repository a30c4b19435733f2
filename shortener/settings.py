"""Every TOUCHLINK_* setting in one inventory, parsed and validated once by the app factory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shortener.journey_cookie import MODES as JOURNEY_MODES
from shortener.urls import normalise_host, split_authority


class SettingsError(Exception):
    """One or more TOUCHLINK_* variables are invalid; the message names each of them."""

    def __init__(self, problems: dict[str, str]) -> None:
        lines = "\n".join(f"  {name}: {problem}" for name, problem in problems.items())
        super().__init__(f"Invalid configuration:\n{lines}")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:
    """The service's configuration; `from_env` is the only way the environment is read."""

    secret_key: str = field(repr=False)
    database_url: str
    # Reports read here when set: a streaming replica of database_url, so that analysts' queries
    # never compete with the writes of the redirect and the worker.
    reports_database_url: str | None = None
    instance_path: str = "instance"
    base_url: str = "http://localhost:5000"
    redis_url: str | None = None
    # redis_url names one node of a Redis Cluster; the client finds the others from it.
    redis_cluster: bool = False
    short_domains: tuple[str, ...] = ()
    cache_ttl: float = 10.0
    default_redirect_status: int = 302
    stream: str = "touchlink:clicks"
    # Clicks are spread over this many streams by link id (analytics.stream.shard_streams).
    stream_shards: int = 1
    strict_capture: bool = False
    flush_interval: float = 0.005
    batch_size: int = 1000
    reclaim_idle: float = 60.0
    max_deliveries: int = 5
    geoip_mmdb: str | None = None
    spool_dir: str = "spool"
    proxy_hops: int = 0
    secure_cookies: bool = False
    log_level: str = "INFO"
    timezone: str = "UTC"
    journeys: str = "off"  # off, cookie or cookieless
    journey_days: int = 30
    journey_retention_days: int = 90
    conversion_window_days: int = 30  # a click converts up to this long after it
    # DNT and Sec-GPC: `count` counts such a click without a visitor id or a journey.
    privacy_signals: str = "count"
    raw_retention_days: int | None = None  # raw click rows deleted past it; rollups stay
    webhook_allow_private: bool = False  # webhooks may be sent to private addresses
    # E-mail of alerts (analytics.mail): none is sent without an SMTP host.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_starttls: bool = True
    alert_emails: tuple[str, ...] = ()  # none: the admin users' e-mail addresses
    live_viewers: int = 32  # live feed streams one process serves at once (a thread each)
    live_heartbeat: float = 15.0  # seconds of silence before a live stream sends `: ping`

    @property
    def short_host(self) -> str:
        """The host of the default short domain, e.g. `go.example.com` or `localhost:5000`."""
        return urlsplit(self.base_url).netloc

    @property
    def own_hosts(self) -> tuple[str, ...]:
        """Every host name that serves our short links; destinations may not point back at them."""
        return (self.short_host, *self.short_domains)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def zone(self) -> ZoneInfo:
        """The workspace's time zone: where report days, weeks and months begin."""
        return ZoneInfo(self.timezone)

    def today(self, now: datetime) -> date:
        """The workspace's day at `now`."""
        return now.astimezone(self.zone).date()

    @property
    def scheme(self) -> str:
        """`http` or `https`: how short links are written."""
        return self.base_url.split("://", 1)[0]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read TOUCHLINK_* variables; raise SettingsError naming every bad one at once.

        The instance folder (embedded database, generated secret key, spool) is
        TOUCHLINK_INSTANCE_PATH, or `instance` in the working directory.
        """
        instance = Path(environ.get("TOUCHLINK_INSTANCE_PATH") or Path.cwd() / "instance")
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}

        def take(name: str, attr: str, parse: Callable[[str], Any]) -> None:
            raw = environ.get(name)
            if raw is None or raw == "":
                return
            try:
                values[attr] = parse(raw)
            except ValueError as exc:
                problems[name] = str(exc)

        take("TOUCHLINK_DATABASE_URL", "database_url", _database_url)
        take("TOUCHLINK_REPORTS_DATABASE_URL", "reports_database_url", _database_url)
        take("TOUCHLINK_REDIS_URL", "redis_url", _redis_url)
        take("TOUCHLINK_BASE_URL", "base_url", _base_url)
        take("TOUCHLINK_SHORT_DOMAINS", "short_domains", _host_list)
        take("TOUCHLINK_SECRET_KEY", "secret_key", _secret_key)
        take("TOUCHLINK_CACHE_TTL", "cache_ttl", _number(0, 3600))
        take("TOUCHLINK_REDIRECT_STATUS", "default_redirect_status", _redirect_status)
        take("TOUCHLINK_STREAM", "stream", _nonempty)
        take("TOUCHLINK_STREAM_SHARDS", "stream_shards", _integer(1, MAX_STREAM_SHARDS))
        take("TOUCHLINK_REDIS_CLUSTER", "redis_cluster", _boolean)
        problems.update(_stream_problems(values, already=problems.keys()))
        take("TOUCHLINK_STRICT_CAPTURE", "strict_capture", _boolean)
        take("TOUCHLINK_FLUSH_INTERVAL", "flush_interval", _number(0.001, 1))
        take("TOUCHLINK_BATCH_SIZE", "batch_size", _integer(1, 100_000))
        take("TOUCHLINK_RECLAIM_IDLE", "reclaim_idle", _number(1, 86_400))
        take("TOUCHLINK_MAX_DELIVERIES", "max_deliveries", _integer(1, 1000))
        take("TOUCHLINK_GEOIP_MMDB", "geoip_mmdb", _existing_file)
        take("TOUCHLINK_SPOOL_DIR", "spool_dir", _nonempty)
        take("TOUCHLINK_PROXY_HOPS", "proxy_hops", _integer(0, 10))
        take("TOUCHLINK_SECURE_COOKIES", "secure_cookies", _boolean)
        take("TOUCHLINK_LOG_LEVEL", "log_level", _log_level)
        take("TOUCHLINK_TIMEZONE", "timezone", _timezone)
        take("TOUCHLINK_JOURNEYS", "journeys", _journeys)
        take("TOUCHLINK_JOURNEY_DAYS", "journey_days", _integer(1, 400))
        take("TOUCHLINK_JOURNEY_RETENTION_DAYS", "journey_retention_days", _integer(1, 3650))
        take("TOUCHLINK_CONVERSION_WINDOW_DAYS", "conversion_window_days", _integer(1, 365))
        take("TOUCHLINK_PRIVACY_SIGNALS", "privacy_signals", _privacy_signals)
        take("TOUCHLINK_RAW_RETENTION_DAYS", "raw_retention_days", _integer(1, 36_500))
        take("TOUCHLINK_WEBHOOK_ALLOW_PRIVATE", "webhook_allow_private", _boolean)
        take("TOUCHLINK_SMTP_HOST", "smtp_host", _nonempty)
        take("TOUCHLINK_SMTP_PORT", "smtp_port", _integer(1, 65535))
        take("TOUCHLINK_SMTP_USER", "smtp_user", _nonempty)
        take("TOUCHLINK_SMTP_PASSWORD", "smtp_password", str)
        take("TOUCHLINK_SMTP_FROM", "smtp_from", _email)
        take("TOUCHLINK_SMTP_STARTTLS", "smtp_starttls", _boolean)
        take("TOUCHLINK_ALERT_EMAILS", "alert_emails", _email_list)
        if "smtp_host" in values and "smtp_from" not in values:
            problems["TOUCHLINK_SMTP_FROM"] = (
                "is required with TOUCHLINK_SMTP_HOST (the address alert e-mails come from)"
            )
        if ("smtp_user" in values) != ("smtp_password" in values):
            missing = "PASSWORD" if "smtp_user" in values else "USER"
            problems[f"TOUCHLINK_SMTP_{missing}"] = (
                "TOUCHLINK_SMTP_USER and TOUCHLINK_SMTP_PASSWORD go together"
            )
        take("TOUCHLINK_LIVE_VIEWERS", "live_viewers", _integer(1, 10_000))
        take("TOUCHLINK_LIVE_HEARTBEAT", "live_heartbeat", _number(0.1, 300))
        if problems:
            raise SettingsError(problems)

        if "secret_key" not in values:
            try:
                values["secret_key"] = _instance_secret(instance)
            except (OSError, ValueError) as exc:
                raise SettingsError({"TOUCHLINK_SECRET_KEY": str(exc)}) from exc
        values["instance_path"] = str(instance)
        values.setdefault("database_url", f"sqlite:///{instance / 'touchlink.db'}")
        values.setdefault("spool_dir", str(instance / "spool"))
        if "secure_cookies" not in values:
            values["secure_cookies"] = values.get("base_url", "").startswith("https://")
        return cls(**values)


MAX_STREAM_SHARDS = 1024


def _stream_problems(values: Mapping[str, Any], *, already: Iterable[str]) -> dict[str, str]:
    """What the Redis and stream settings get wrong together, by the variable to change (none
    for a variable already found wrong on its own)."""
    problems = {}
    if values.get("stream_shards", 1) > 1 and any(c in values.get("stream", "") for c in "{}"):
        # Each shard's name is a hash tag, `{<stream>:<i>}`: braces inside would cut it short.
        problems["TOUCHLINK_STREAM"] = (
            "must not hold { or } when TOUCHLINK_STREAM_SHARDS is above 1"
        )
    if values.get("redis_cluster") and "TOUCHLINK_REDIS_URL" not in already:
        url = values.get("redis_url")
        if url is None:
            problems["TOUCHLINK_REDIS_CLUSTER"] = "needs TOUCHLINK_REDIS_URL: a node of the cluster"
        elif url.startswith("unix://"):
            problems["TOUCHLINK_REDIS_URL"] = (
                "must be a redis:// or rediss:// URL with TOUCHLINK_REDIS_CLUSTER: cluster nodes "
                "are reached over TCP"
            )
        elif urlsplit(url).path.strip("/") not in ("", "0"):
            problems["TOUCHLINK_REDIS_URL"] = (
                "must name database 0 (or none) with TOUCHLINK_REDIS_CLUSTER: a Redis Cluster has "
                "no other"
            )
    return problems


def _instance_secret(instance: Path) -> str:
    # A self-hosted install should work with no configuration, yet never with a guessable key:
    # generate one per instance folder on first start and keep it there (readable by us only).
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        draft = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            # A link appears whole and never replaces a file: when several processes start at
            # once, the first key wins and every process reads that same one below.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(
            f"is not set, and {path} holds no usable key; remove that file to have one generated"
        )
    return key


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be blank")
    return raw.strip()


def _database_url(raw: str) -> str:
    scheme, colon, rest = raw.partition(":")
    if not colon:
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    if scheme in ("postgresql", "postgres"):
        # SQLAlchemy's plain postgresql:// means psycopg2, which we do not ship; psycopg 3 it is.
        # postgres:// is what many hosting platforms hand out for the same thing.
        return f"postgresql+psycopg:{rest}"
    if scheme not in ("sqlite", "postgresql+psycopg"):
        raise ValueError(
            f"must be a sqlite:/// or postgresql:// URL (driver psycopg), not {scheme!r}"
        )
    return raw


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return raw


def _base_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL such as https://go.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be scheme and host only, with no path or query")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold a user name or password")
    try:
        name, port = split_authority(parts.netloc)
        # Links are stored under this host: one spelling, whatever case or form it was given in.
        host = normalise_host(name)
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(port)
    except ValueError:
        raise ValueError(
            f"{parts.netloc!r} is not a host name with an optional port (write go.example.com)"
        ) from None
    default_port = "443" if parts.scheme == "https" else "80"
    authority = host if port in (None, "", default_port) else f"{host}:{int(port)}"
    return f"{parts.scheme}://{authority}"


def _host_list(raw: str) -> tuple[str, ...]:
    hosts = []
    for host in (h.strip() for h in raw.split(",") if h.strip()):
        try:
            if "/" in host:
                raise ValueError(host)
            hosts.append(normalise_host(host))
        except ValueError:
            raise ValueError(f"{host!r} is not a host name (write go.example.com)") from None
    return tuple(hosts)


def _secret_key(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError(
            "must be at least 32 characters "
            "(try: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return raw


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, not {raw!r}")


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"must be a number, not {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, not {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _email(raw: str) -> str:
    address = raw.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in ",<>" for c in address):
        raise ValueError(f"{raw!r} is not an e-mail address (write alerts@example.com)")
    return address


def _email_list(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_email(part) for part in raw.split(",") if part.strip()))


def _redirect_status(raw: str) -> int:
    if raw not in ("301", "302", "307", "308"):
        raise ValueError("must be one of 301, 302, 307, 308")
    return int(raw)


def _existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(f"no such file: {raw}")
    return raw


def _journeys(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in JOURNEY_MODES:
        raise ValueError(f"must be {', '.join(JOURNEY_MODES[:-1])} or {JOURNEY_MODES[-1]}")
    return mode


def _privacy_signals(raw: str) -> str:
    choice = raw.strip().lower()
    if choice not in ("count", "ignore"):
        raise ValueError("must be count or ignore")
    return choice


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _timezone(raw: str) -> str:
    name = raw.strip()
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{raw!r} is not a time zone name (write an IANA name such as Europe/Paris)"
        ) from None
    odd = odd_offset(zone)
    if odd is not None:
        raise ValueError(
            f"{name} is {odd} from UTC at times; reports count whole hours, so a time zone "
            "must always be a whole number of hours from UTC"
        )
    return name


def odd_offset(zone: ZoneInfo, *, since: datetime | None = None) -> str | None:
    """An offset of `zone` from UTC that is not a whole number of hours (`+05:30`), or None.

    Checked week by week from `since` (now) to 2100: every offset the clicks still to come can
    meet. (Singapore, say, was 7:30 ahead until 1982: what it was before there were clicks does
    not matter; a report window in such a time is refused as not a whole hour.)
    """
    moment = since or datetime.now(UTC)
    end = datetime(2100, 1, 1, tzinfo=UTC)
    while moment < end:
        offset = moment.astimezone(zone).utcoffset() or timedelta(0)
        if offset % timedelta(hours=1):
            minutes = int(offset.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        moment += timedelta(days=7)
    return None
