"""`flask backup create|restore`: a consistent copy of a SQLite database, checked, and put back.

SQLite's online backup API copies the database page by page under a read lock, so a copy taken
while the app serves requests is a consistent snapshot. The copy is written beside its final name
and renamed only once it is complete and passes `PRAGMA integrity_check`: a half-written file never
carries a backup's name. A restore accepts only a database of this app at this app's migration,
and checks the ledger once it is back.

PostgreSQL has its own tools for this (`pg_dump`, `pg_restore`); the commands refuse and name them.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from .extensions import db

# The tables whose row counts tell an operator at a glance that a copy holds what it should.
SUMMARY_TABLES = (
    "facility",
    "wbp",
    "product",
    "production_batch",
    "user_account",
    "customer_order",
    "order_line",
    "payment",
    "refund",
    "payout_run",
    "ledger_posting",
    "ledger_entry",
)

SQLITE_HEADER = b"SQLite format 3\x00"

POSTGRES_BACKUP = 'pg_dump -Fc --no-owner -f karya.dump "$DATABASE_URL"'
POSTGRES_RESTORE = 'pg_restore --clean --if-exists --no-owner -d "$DATABASE_URL" karya.dump'


class Refused(click.ClickException):
    """A one-line refusal on stderr and an exit code: 1 for the data, 2 for how it was asked."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _live_database() -> Path:
    """The app's SQLite file; refuses any other database."""
    url = db.engine.url
    if url.get_backend_name() == "postgresql":
        raise Refused(
            f"the database is PostgreSQL: back it up with `{POSTGRES_BACKUP}` and "
            f"restore with `{POSTGRES_RESTORE}` (README, Operations).",
            exit_code=2,
        )
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise Refused("backup works on a SQLite database file only.", exit_code=2)
    return Path(url.database)


@contextmanager
def _open(path: Path, *, read_only: bool) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection; read-only opens never create a file."""
    mode = "ro" if read_only else "rwc"
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    with closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        yield conn


def _check_integrity(conn: sqlite3.Connection, what: str) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchall()
    if result != [("ok",)]:
        raise Refused(f"{what} fails its integrity check: {result[0][0]}")


def _migration_heads() -> set[str]:
    from alembic.script import ScriptDirectory

    config = current_app.extensions["migrate"].migrate.get_config()
    return set(ScriptDirectory.from_config(config).get_heads())


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuses a database that is not this app's at this app's migration head."""
    try:
        found = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.DatabaseError:
        raise Refused(
            f"{path} has no migration version: it is not a Karya Binaan database."
        ) from None
    expected = _migration_heads()
    if found != expected:
        raise Refused(
            f"{path} is at migration {', '.join(sorted(found)) or 'none'}, this app expects "
            f"{', '.join(sorted(expected))}: restore it with the app version that made it, or "
            "restore and then run `flask db upgrade` on a copy."
        )


def summary(conn: sqlite3.Connection) -> list[str]:
    """Rows per main table and the ledger's total per account kind, as lines to print."""
    lines = []
    for table in SUMMARY_TABLES:
        # Table names come from the constant above, never from input.
        count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608
        lines.append(f"  {table:<18} {count:>10,} rows")
    totals = conn.execute(
        "SELECT kind, sum(balance) FROM ledger_account GROUP BY kind ORDER BY kind"
    ).fetchall()
    lines.append("  ledger balance per account kind (rupiah):")
    lines += [f"    {kind:<16} {total:>14,}" for kind, total in totals] or ["    (no accounts)"]
    return lines


def _copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    source.backup(target, pages=1024)


def create(destination: Path) -> None:
    live = _live_database()
    if not live.is_file():
        raise Refused(f"there is no database at {live} to back up.")
    if destination.exists():
        raise Refused(f"{destination} already exists; choose a new name for each backup.")
    if not destination.parent.is_dir():
        raise Refused(f"the folder {destination.parent} does not exist.")
    # In the target's folder, so the rename is atomic; mkstemp makes it readable by its owner
    # only, as a file with every password hash and buyer address should be.
    handle, name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".partial"
    )
    os.close(handle)
    partial = Path(name)
    try:
        with _open(live, read_only=True) as source, _open(partial, read_only=False) as copy:
            _copy(source, copy)
            # One self-contained file: no -wal beside it to forget when the file is moved.
            copy.execute("PRAGMA journal_mode=DELETE")
            _check_integrity(copy, "the copy")
            lines = summary(copy)
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        partial.replace(destination)
    except sqlite3.Error as error:
        raise Refused(f"the backup failed: {error}") from None
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"Backup written: {destination} ({destination.stat().st_size:,} bytes)")
    for line in lines:
        click.echo(line)


def restore(source_path: Path, confirmed: bool) -> None:
    live = _live_database()
    if not source_path.is_file():
        raise Refused(f"there is no file at {source_path}.")
    if live.exists() and source_path.resolve() == live.resolve():
        raise Refused(f"{source_path} is the live database itself.")
    with source_path.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise Refused(f"{source_path} is not a SQLite database.")
    try:
        with _open(source_path, read_only=True) as source:
            _check_integrity(source, str(source_path))
            _check_schema(source, source_path)
            if not confirmed:
                raise Refused(
                    f"restoring replaces everything in {live} with {source_path}; "
                    "add --yes to do it.",
                    exit_code=2,
                )
            db.session.remove()
            db.engine.dispose()  # no pooled connection of ours holds the old file
            if not live.exists():
                # A -wal left beside a deleted database would be replayed into the new one.
                for leftover in (Path(f"{live}-wal"), Path(f"{live}-shm")):
                    leftover.unlink(missing_ok=True)
            with _open(live, read_only=False) as target:
                _copy(source, target)
                _check_integrity(target, "the restored database")
                lines = summary(target)
    except sqlite3.Error as error:
        raise Refused(f"the restore failed: {error}") from None
    click.echo(f"Restored {live} from {source_path}")
    for line in lines:
        click.echo(line)

    from finance import checks

    found = checks.problems()
    for problem in found:
        click.echo(f"BREACH: {problem}", err=True)
    if found:
        raise Refused("the restored ledger has the breaches above.")
    click.echo("Ledger OK: every posting balances and every balance matches its entries.")


def register(app_cli: AppGroup) -> None:
    group = AppGroup("backup", help="Back up and restore the SQLite database.")
    app_cli.add_command(group)

    @group.command("create")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    def create_command(path: Path) -> None:
        """Copy the database to PATH, a new file.

        The copy is consistent while the app runs, and checked before it takes its name."""
        create(path)

    @group.command("restore")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--yes", is_flag=True, help="Really replace the database's contents.")
    def restore_command(path: Path, yes: bool) -> None:
        """Replace the database with the backup at PATH.

        Only a backup of this app at this migration is taken; the ledger is checked after."""
        restore(path, yes)
