"""Throw-away PostgreSQL databases, for the benchmarks and the tests alike."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def throwaway_database(
    server_url: str = POSTGRES_SERVER, prefix: str = "karya", keep: bool = False
) -> Iterator[str]:
    """Creates `<prefix>_<random>` on the server, yields its URL, and drops it afterwards whatever
    happens (unless `keep`, for looking at it after a run)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept database {name}", flush=True)
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
