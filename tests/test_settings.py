"""Settings.from_env: one inventory of TOUCHLINK_* variables, checked all at once, safe defaults."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shortener.settings import Settings, SettingsError

BAD = {
    "TOUCHLINK_DATABASE_URL": "mysql://root@db/touchlink",
    "TOUCHLINK_REDIS_URL": "http://redis:6379",
    "TOUCHLINK_BASE_URL": "go.example.com/links",
    "TOUCHLINK_SHORT_DOMAINS": "go.example.com, https://links.example.com/",
    "TOUCHLINK_SECRET_KEY": "too-short",
    "TOUCHLINK_CACHE_TTL": "ten",
    "TOUCHLINK_REDIRECT_STATUS": "303",
    "TOUCHLINK_STREAM": "   ",
    "TOUCHLINK_STREAM_SHARDS": "0",
    "TOUCHLINK_REDIS_CLUSTER": "perhaps",
    "TOUCHLINK_STRICT_CAPTURE": "maybe",
    "TOUCHLINK_FLUSH_INTERVAL": "0",
    "TOUCHLINK_BATCH_SIZE": "1e3",
    "TOUCHLINK_RECLAIM_IDLE": "nan",
    "TOUCHLINK_MAX_DELIVERIES": "0",
    "TOUCHLINK_GEOIP_MMDB": "/nonexistent/country.mmdb",
    "TOUCHLINK_SPOOL_DIR": " ",
    "TOUCHLINK_PROXY_HOPS": "-1",
    "TOUCHLINK_SECURE_COOKIES": "sometimes",
    "TOUCHLINK_LOG_LEVEL": "LOUD",
    "TOUCHLINK_TIMEZONE": "Mars/Olympus_Mons",
    "TOUCHLINK_JOURNEYS": "fingerprint",
    "TOUCHLINK_JOURNEY_DAYS": "0",
    "TOUCHLINK_JOURNEY_RETENTION_DAYS": "ninety",
    "TOUCHLINK_CONVERSION_WINDOW_DAYS": "366",
}


def test_every_bad_variable_is_named_in_one_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BAD, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    assert set(raised.value.problems) == set(BAD)
    message = str(raised.value)
    for name in BAD:
        assert name in message
    assert "too-short" not in message  # a secret, even a bad one, is never echoed
    assert list(tmp_path.iterdir()) == []  # nothing is created for a configuration that fails


def test_the_defaults_keep_everything_in_the_instance_folder(tmp_path: Path) -> None:
    instance = tmp_path / "instance"

    settings = Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(instance)})

    assert settings.instance_path == str(instance)
    assert settings.database_url == f"sqlite:///{instance / 'touchlink.db'}"
    assert settings.is_sqlite
    assert settings.spool_dir == str(instance / "spool")
    assert settings.redis_url is None
    assert settings.base_url == "http://localhost:5000"
    assert settings.short_host == "localhost:5000"
    assert settings.scheme == "http"
    assert settings.default_redirect_status == 302
    assert settings.secure_cookies is False
    assert (settings.timezone, settings.zone) == ("UTC", ZoneInfo("UTC"))


def test_without_an_instance_path_the_instance_folder_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = Settings.from_env({})

    assert settings.instance_path == str(tmp_path / "instance")
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'touchlink.db'}"
    assert (tmp_path / "instance" / "secret_key").read_text().strip() == settings.secret_key


def test_a_secret_key_is_generated_once_readable_by_us_only_and_reused(tmp_path: Path) -> None:
    instance = tmp_path / "instance"

    first = Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(instance)})
    second = Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(instance)})
    elsewhere = Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(tmp_path / "other")})

    key_file = instance / "secret_key"
    assert len(first.secret_key) >= 32
    assert key_file.read_text().strip() == first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert second.secret_key == first.secret_key
    assert elsewhere.secret_key != first.secret_key
    assert sorted(path.name for path in instance.iterdir()) == ["secret_key"]
    assert first.secret_key not in repr(first)


def test_processes_starting_together_agree_on_one_generated_key(tmp_path: Path) -> None:
    keys: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(tmp_path)}).secret_key)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 8
    assert set(keys) == {(tmp_path / "secret_key").read_text()}


def test_an_unusable_key_file_fails_loudly_instead_of_signing_with_it(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("\n")

    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    assert set(raised.value.problems) == {"TOUCHLINK_SECRET_KEY"}


def test_a_configured_secret_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    key = "k" * 40

    settings = Settings.from_env(
        {"TOUCHLINK_SECRET_KEY": key, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)}
    )

    assert settings.secret_key == key
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://touchlink@db/touchlink", "postgresql+psycopg://touchlink@db/touchlink"),
        ("postgresql://u:p@db:5433/t?sslmode=require",
         "postgresql+psycopg://u:p@db:5433/t?sslmode=require"),
        ("postgres://touchlink@db/touchlink", "postgresql+psycopg://touchlink@db/touchlink"),
        ("postgresql+psycopg://touchlink@db/touchlink",
         "postgresql+psycopg://touchlink@db/touchlink"),
        ("sqlite:////var/lib/touchlink/db.sqlite", "sqlite:////var/lib/touchlink/db.sqlite"),
    ],
)
def test_database_urls_are_read_with_psycopg_3(tmp_path: Path, raw: str, expected: str) -> None:
    env = {
        "TOUCHLINK_DATABASE_URL": raw,
        "TOUCHLINK_SECRET_KEY": "k" * 32,
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path),
    }

    assert Settings.from_env(env).database_url == expected


@pytest.mark.parametrize(
    "raw", ["postgresql+psycopg2://db/t", "mysql://db/t", "touchlink.db", "postgresql+asyncpg://x"]
)
def test_a_database_url_we_cannot_use_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {"TOUCHLINK_DATABASE_URL": raw, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)}
        )

    assert set(raised.value.problems) == {"TOUCHLINK_DATABASE_URL"}


def test_short_domains_are_normalised(tmp_path: Path) -> None:
    env = {
        "TOUCHLINK_SHORT_DOMAINS": " GO.Example.COM., bücher.test ,, links.example.org:443 ",
        "TOUCHLINK_SECRET_KEY": "k" * 32,
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path),
    }

    settings = Settings.from_env(env)

    assert settings.short_domains == ("go.example.com", "xn--bcher-kva.test", "links.example.org")


@pytest.mark.parametrize(
    ("raw", "base_url", "short_host"),
    [
        ("https://GO.Example.com/", "https://go.example.com", "go.example.com"),
        ("https://go.example.com:443", "https://go.example.com", "go.example.com"),
        ("http://go.example.com:8080", "http://go.example.com:8080", "go.example.com:8080"),
        ("https://bücher.test", "https://xn--bcher-kva.test", "xn--bcher-kva.test"),
    ],
)
def test_the_base_url_is_normalised(
    tmp_path: Path, raw: str, base_url: str, short_host: str
) -> None:
    env = {
        "TOUCHLINK_BASE_URL": raw,
        "TOUCHLINK_SECRET_KEY": "k" * 32,
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path),
    }

    settings = Settings.from_env(env)

    assert (settings.base_url, settings.short_host) == (base_url, short_host)


@pytest.mark.parametrize(
    "raw",
    ["ftp://go.example.com", "https://", "https://go.example.com/links",
     "https://go.example.com?x=1", "https://user:pw@go.example.com", "https://go.example.com:0",
     "https://go.example.com:http", "https://go example.com"],
)
def test_a_base_url_that_is_not_scheme_and_host_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TOUCHLINK_BASE_URL": raw, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    assert set(raised.value.problems) == {"TOUCHLINK_BASE_URL"}


def test_an_https_base_url_turns_secure_cookies_on(tmp_path: Path) -> None:
    env = {
        "TOUCHLINK_BASE_URL": "https://go.example.com",
        "TOUCHLINK_SECRET_KEY": "k" * 32,
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path),
    }

    settings = Settings.from_env(env)

    assert settings.secure_cookies is True
    assert settings.scheme == "https"


def test_values_are_parsed_and_blank_ones_count_as_unset(tmp_path: Path) -> None:
    env = {
        "TOUCHLINK_SECRET_KEY": "k" * 32,
        "TOUCHLINK_REDIS_URL": "redis://redis:6379/0",
        "TOUCHLINK_CACHE_TTL": "2.5",
        "TOUCHLINK_REDIRECT_STATUS": "308",
        "TOUCHLINK_STRICT_CAPTURE": "Yes",
        "TOUCHLINK_BATCH_SIZE": "250",
        "TOUCHLINK_LOG_LEVEL": "debug",
        "TOUCHLINK_STREAM": "",
        "TOUCHLINK_BASE_URL": "",
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path),
    }

    settings = Settings.from_env(env)

    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.cache_ttl == 2.5
    assert settings.default_redirect_status == 308
    assert settings.strict_capture is True
    assert settings.batch_size == 250
    assert settings.log_level == "DEBUG"
    assert settings.stream == "touchlink:clicks"
    assert settings.base_url == "http://localhost:5000"


# --- the click stream: shards and Redis Cluster ---------------------------------------------


def test_one_stream_on_one_redis_unless_told_otherwise(tmp_path: Path) -> None:
    settings = Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    assert (settings.stream, settings.stream_shards, settings.redis_cluster) == (
        "touchlink:clicks", 1, False,
    )


def test_shards_and_a_cluster_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "TOUCHLINK_STREAM_SHARDS": "8", "TOUCHLINK_REDIS_CLUSTER": "true",
        "TOUCHLINK_REDIS_URL": "redis://redis-1:7000", "TOUCHLINK_INSTANCE_PATH": str(tmp_path),
    })

    assert (settings.stream_shards, settings.redis_cluster) == (8, True)
    assert settings.redis_url == "redis://redis-1:7000"


@pytest.mark.parametrize(
    ("env", "name", "says"),
    [
        ({"TOUCHLINK_STREAM_SHARDS": "1025"}, "TOUCHLINK_STREAM_SHARDS", "between 1 and 1024"),
        ({"TOUCHLINK_STREAM_SHARDS": "two"}, "TOUCHLINK_STREAM_SHARDS", "whole number"),
        ({"TOUCHLINK_STREAM_SHARDS": "4", "TOUCHLINK_STREAM": "clicks{eu}"}, "TOUCHLINK_STREAM",
         "must not hold { or }"),
        ({"TOUCHLINK_REDIS_CLUSTER": "1"}, "TOUCHLINK_REDIS_CLUSTER", "needs TOUCHLINK_REDIS_URL"),
        ({"TOUCHLINK_REDIS_CLUSTER": "1", "TOUCHLINK_REDIS_URL": "redis://redis-1:7000/3"},
         "TOUCHLINK_REDIS_URL", "database 0"),
        ({"TOUCHLINK_REDIS_CLUSTER": "1", "TOUCHLINK_REDIS_URL": "unix:///run/redis.sock"},
         "TOUCHLINK_REDIS_URL", "over TCP"),
    ],
    ids=["too-many-shards", "not-a-number", "braces", "no-url", "database-3", "unix-socket"],
)
def test_stream_settings_that_cannot_work_are_refused_naming_the_variable(
    tmp_path: Path, env: dict[str, str], name: str, says: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**env, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    assert list(raised.value.problems) == [name]
    assert says in raised.value.problems[name]


def test_a_stream_name_with_braces_is_kept_while_there_is_one_shard(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"TOUCHLINK_STREAM": "clicks{eu}", "TOUCHLINK_INSTANCE_PATH": str(tmp_path)}
    )

    assert (settings.stream, settings.stream_shards) == ("clicks{eu}", 1)



# --- the time zone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney"]
)
def test_the_time_zone_is_an_iana_name_whose_days_reports_cut(tmp_path: Path, name: str) -> None:
    settings = Settings.from_env(
        {"TOUCHLINK_TIMEZONE": f" {name} ", "TOUCHLINK_INSTANCE_PATH": str(tmp_path)}
    )

    assert (settings.timezone, settings.zone) == (name, ZoneInfo(name))
    late_on_the_3rd = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)
    assert settings.today(late_on_the_3rd) == late_on_the_3rd.astimezone(ZoneInfo(name)).date()


def test_today_is_the_workspaces_day(tmp_path: Path) -> None:
    paris = Settings.from_env(
        {"TOUCHLINK_TIMEZONE": "Europe/Paris", "TOUCHLINK_INSTANCE_PATH": str(tmp_path)}
    )

    assert paris.today(datetime(2026, 3, 3, 23, 30, tzinfo=UTC)) == date(2026, 3, 4)
    assert paris.today(datetime(2026, 3, 3, 22, 59, tzinfo=UTC)) == date(2026, 3, 3)


@pytest.mark.parametrize(
    ("name", "offsets"),
    [
        ("Asia/Kolkata", {"+05:30"}),
        ("Asia/Kathmandu", {"+05:45"}),
        # The first odd offset from now on: summer or winter time, by the day this runs.
        ("America/St_Johns", {"-03:30", "-02:30"}),
        ("Australia/Adelaide", {"+09:30", "+10:30"}),
        ("Australia/Lord_Howe", {"+10:30"}),  # +11:00 in summer, a whole hour
        ("Asia/Tehran", {"+03:30"}),
    ],
)
def test_a_time_zone_off_the_whole_hours_is_refused_saying_why(
    tmp_path: Path, name: str, offsets: set[str]
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TOUCHLINK_TIMEZONE": name, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    problem = raised.value.problems["TOUCHLINK_TIMEZONE"]
    assert set(raised.value.problems) == {"TOUCHLINK_TIMEZONE"}
    assert any(problem.startswith(f"{name} is {offset} from UTC") for offset in offsets)
    assert "whole number of hours" in problem


@pytest.mark.parametrize("raw", ["Paris", "Europe/Pariss", "CEST", "../../etc/passwd", "+01:00"])
def test_a_time_zone_that_is_no_iana_name_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TOUCHLINK_TIMEZONE": raw, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    problem = raised.value.problems["TOUCHLINK_TIMEZONE"]
    assert "is not a time zone name" in problem and "Europe/Paris" in problem


def test_touchlink_refuses_to_start_in_asia_kolkata_with_a_clear_error(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOUCHLINK_")},
        "TOUCHLINK_TIMEZONE": "Asia/Kolkata",
        "TOUCHLINK_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    started = subprocess.run(
        [sys.executable, "-c", "import wsgi; wsgi.main()", "db", "upgrade"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )

    assert started.returncode == 1
    assert "Traceback" not in started.stderr
    assert (
        "TOUCHLINK_TIMEZONE: Asia/Kolkata is +05:30 from UTC at times; reports count whole hours"
    ) in started.stderr
    assert not (tmp_path / "instance" / "touchlink.db").exists()


# --- journeys ------------------------------------------------------------------------------------


def test_journeys_are_off_unless_the_operator_chooses(tmp_path: Path) -> None:
    settings = Settings.from_env({"TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    assert (settings.journeys, settings.journey_days, settings.journey_retention_days) == (
        "off", 30, 90
    )


@pytest.mark.parametrize(
    ("raw", "mode"),
    [("cookie", "cookie"), (" Cookieless ", "cookieless"), ("OFF", "off"), ("", "off")],
)
def test_the_journey_mode_is_read_as_written_or_in_capitals(
    tmp_path: Path, raw: str, mode: str
) -> None:
    env = {"TOUCHLINK_JOURNEYS": raw, "TOUCHLINK_JOURNEY_DAYS": "7",
           "TOUCHLINK_JOURNEY_RETENTION_DAYS": "30", "TOUCHLINK_CONVERSION_WINDOW_DAYS": "14",
           "TOUCHLINK_INSTANCE_PATH": str(tmp_path)}

    settings = Settings.from_env(env)

    assert (settings.journeys, settings.journey_days, settings.journey_retention_days) == (
        mode, 7, 30
    )
    assert settings.conversion_window_days == 14


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("TOUCHLINK_JOURNEYS", "cookies", "must be off, cookie or cookieless"),
        ("TOUCHLINK_JOURNEYS", "on", "must be off, cookie or cookieless"),
        ("TOUCHLINK_JOURNEY_DAYS", "0", "must be between 1 and 400"),
        ("TOUCHLINK_JOURNEY_DAYS", "401", "must be between 1 and 400"),
        ("TOUCHLINK_JOURNEY_DAYS", "1.5", "must be a whole number"),
        ("TOUCHLINK_JOURNEY_RETENTION_DAYS", "-1", "must be between 1 and 3650"),
        ("TOUCHLINK_JOURNEY_RETENTION_DAYS", "3651", "must be between 1 and 3650"),
        ("TOUCHLINK_JOURNEY_RETENTION_DAYS", "ninety", "must be a whole number"),
        ("TOUCHLINK_CONVERSION_WINDOW_DAYS", "0", "must be between 1 and 365"),
        ("TOUCHLINK_CONVERSION_WINDOW_DAYS", "a month", "must be a whole number"),
    ],
)
def test_bad_journey_settings_are_named_with_what_they_must_be(
    tmp_path: Path, name: str, raw: str, says: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: raw, "TOUCHLINK_INSTANCE_PATH": str(tmp_path)})

    assert set(raised.value.problems) == {name}
    assert says in raised.value.problems[name]
    assert name in str(raised.value)
