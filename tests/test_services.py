"""The private servers the test session falls back on when nothing answers (tests/services.py)."""

from __future__ import annotations

import psycopg

from tests.services import PostgresServer, _postgres_answers


def test_a_private_postgres_starts_answers_and_is_gone_after_stop() -> None:
    server = PostgresServer()
    server.start()
    try:
        plain = server.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute("CREATE DATABASE touchlink_private_check")
            assert conn.execute("SELECT current_setting('fsync')").fetchone() == ("off",)
    finally:
        server.stop()
    assert not _postgres_answers(server.url)
    assert not server.directory.exists()
