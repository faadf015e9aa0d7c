"""Test databases: a SQLite file always; a throw-away PostgreSQL database where a server answers."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.databases import throwaway_database

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_server() -> tuple[str | None, str]:
    """The maintenance URL of a reachable PostgreSQL server, or None and the reason why not."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # any failure to connect means: not available here
        return (
            None,
            f"no PostgreSQL at {make_url(url).render_as_string(hide_password=True)}: "
            f"{type(error).__name__}",
        )
    finally:
        engine.dispose()
    return url, ""


def fresh_postgres_database(server_url: str) -> AbstractContextManager[str]:
    """Creates a uniquely named database, yields its URL, and drops it afterwards."""
    return throwaway_database(server_url, prefix="karya_test")
