"""How a request's transaction ends: COMMIT on PostgreSQL when it only read, else ROLLBACK.

psycopg forgets its prepared statements on ROLLBACK, so read-only requests end with COMMIT
(shop/database.py). Anything that may have written must still be rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from shop.database import _plain_select
from shop.extensions import db
from shop.mail import OutboxMessage


@pytest.fixture
def endings(app_ctx: Flask) -> Iterator[list[str]]:
    """'commit' or 'rollback', for each transaction ended on the engine during the test."""
    seen: list[str] = []

    def committed(_conn) -> None:  # type: ignore[no-untyped-def]
        seen.append("commit")

    def rolled_back(_conn) -> None:  # type: ignore[no-untyped-def]
        seen.append("rollback")

    db.session.rollback()  # the test's own transaction ends before anything is counted
    event.listen(db.engine, "commit", committed)
    event.listen(db.engine, "rollback", rolled_back)
    yield seen
    event.remove(db.engine, "commit", committed)
    event.remove(db.engine, "rollback", rolled_back)


def read_only_ending(app: Flask) -> str:
    with app.app_context():
        return "commit" if db.engine.dialect.name == "postgresql" else "rollback"


def messages() -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(OutboxMessage))


def test_a_request_that_only_read_ends_with_commit_on_postgresql(app, client, endings, demo):
    db.session.rollback()
    endings.clear()
    assert client.get("/products/besek-bambu-banjarnegara").status_code == 200
    assert endings == [read_only_ending(app)]


def test_a_transaction_that_wrote_and_was_not_committed_is_rolled_back(app, endings):
    with app.app_context():
        db.session.add(OutboxMessage(recipient="a@example.id", subject="s", body="b"))
        db.session.flush()  # written, then the request ends without a commit
    assert endings == ["rollback"]
    assert messages() == 0


def test_unflushed_changes_are_never_committed(app, endings):
    with app.app_context():
        db.session.scalar(select(func.count()).select_from(OutboxMessage))
        db.session.add(OutboxMessage(recipient="a@example.id", subject="s", body="b"))
    assert endings == ["rollback"]
    assert messages() == 0


def test_a_transaction_that_locked_rows_is_rolled_back(app, endings):
    with app.app_context():
        db.session.scalars(select(OutboxMessage).with_for_update()).all()
    assert endings == ["rollback"]


def test_a_request_that_failed_is_rolled_back(app, endings):
    with pytest.raises(RuntimeError), app.app_context():
        db.session.scalar(select(func.count()).select_from(OutboxMessage))
        raise RuntimeError("the view failed")
    assert endings == ["rollback"]


def test_a_read_after_a_committed_write_ends_as_a_read(app, endings):
    with app.app_context():
        db.session.add(OutboxMessage(recipient="a@example.id", subject="s", body="b"))
        db.session.commit()
        db.session.scalar(select(func.count()).select_from(OutboxMessage))
    assert endings == ["commit", read_only_ending(app)]
    assert messages() == 1


@pytest.mark.parametrize(
    ("statement", "plain"),
    [
        ("SELECT product.id FROM product WHERE product.slug = %(slug)s", True),
        ("  select 1", True),
        ("SELECT id FROM production_batch WHERE id = %(id)s FOR NO KEY UPDATE", False),
        ("SELECT id FROM production_batch FOR UPDATE OF production_batch", False),
        ("INSERT INTO outbox_message (recipient) VALUES (%(r)s)", False),
        ("UPDATE production_batch SET quantity_allocated = 1", False),
        ("WITH moved AS (DELETE FROM cart_line RETURNING *) SELECT 1", False),
        ("SAVEPOINT sa_savepoint_1", False),
    ],
)
def test_only_selects_without_a_lock_count_as_reads(statement, plain):
    assert _plain_select(statement) is plain


def test_a_failed_commit_of_a_read_still_ends_the_session(app, endings, monkeypatch, caplog):
    def broken_commit(self) -> None:  # type: ignore[no-untyped-def]
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    with app.app_context():
        session = db.session()
        session.scalar(select(func.count()).select_from(OutboxMessage))
        monkeypatch.setattr(type(session), "commit", broken_commit)
    assert endings == ["rollback"]  # by Flask-SQLAlchemy's teardown, which still ran
    expected = 1 if read_only_ending(app) == "commit" else 0
    assert len([r for r in caplog.records if "read-only transaction" in r.getMessage()]) == expected
