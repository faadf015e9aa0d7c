"""`flask backup create|restore` on SQLite, and the documented pg_dump / pg_restore on PostgreSQL:
after a restore the ledger, the orders and the payments are what they were at the backup."""

import shutil
import sqlite3
import subprocess
import uuid
from datetime import date
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from catalog.models import Facility, Product
from finance.models import LedgerAccount, PayoutMethod
from finance.payouts import approve_run, mark_paid, plan_run
from orders.checkout import place_orders
from orders.models import Order, PaymentMethod
from payments import services
from payments.models import Payment, Refund
from payments.refunds import request_refund
from shop import create_app
from shop.accounts.models import BuyerProfile, Role, RoleGrant, User
from shop.extensions import db

from .databases import fresh_postgres_database, postgres_server
from .orders_fixtures import checkout


def make_app(url: str):  # type: ignore[no-untyped-def]
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})


def cli(app, *args: str):  # type: ignore[no-untyped-def]
    """Runs a command as `flask` does: in an app context (the `ledger` group needs one)."""
    with app.app_context():
        result = app.test_cli_runner().invoke(args=list(args))
        db.session.remove()
    return result


def ledger_check(app) -> bool:  # type: ignore[no-untyped-def]
    """`flask ledger check`: True when it passes, False on a breach, and no other outcome."""
    result = cli(app, "ledger", "check")
    if result.exit_code == 0:
        assert "Ledger OK" in result.output
        return True
    assert result.exit_code == 1 and "BREACH" in result.output, result.output
    return False


def close(app) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def sell(app) -> None:  # type: ignore[no-untyped-def]
    """The demo data, then sales that post to the ledger: paid orders at two facilities, a
    partial refund, a premi payout run paid out, and an order not paid yet."""
    with app.app_context():
        upgrade()
    assert cli(app, "seed-demo").exit_code == 0
    with app.app_context():
        facilities = dict(db.session.execute(select(Facility.slug, Facility.id)).tuples().all())
        products = dict(db.session.execute(select(Product.slug, Product.id)).tuples().all())
        staff = User(email="keuangan@example.id", name="Petugas Keuangan", password_hash="-")
        staff.grants = [RoleGrant(role=Role.FINANCE, facility_id=None)]
        buyer = User(email="sari@example.id", name="Ibu Sari", password_hash="-")
        buyer.grants = [RoleGrant(role=Role.BUYER, facility_id=None)]
        buyer.buyer_profile = BuyerProfile(
            business_name="Toko Ikan Asin Bu Sari",
            contact_person="Ibu Sari",
            phone="081234567890",
            address="Kelurahan Semarang, Banjarnegara",
        )
        db.session.add_all([staff, buyer])
        db.session.commit()

        def paid(items, reference):  # type: ignore[no-untyped-def]
            orders = place_orders(buyer, checkout(items))
            for n, order in enumerate(orders):
                services.confirm_receipt(
                    order.id,
                    PaymentMethod.BANK_TRANSFER,
                    order.total,
                    date.today(),
                    f"{reference}-{n}",
                    staff,
                )
            return orders

        paid({products["besek-bambu-banjarnegara"]: 800}, "BRI-1")
        [bag] = paid({products["tas-rajut-banjarnegara"]: 3}, "BRI-2")
        request_refund(bag.id, {bag.lines[0].id: 1}, "satu tas rusak", staff)
        paid({products["keset-kain-perca-magetan"]: 40}, "BRI-3")
        today = date.today()
        run = plan_run(facilities["rutan-banjarnegara"], today.replace(day=1), today, staff)
        approve_run(run.id, staff)
        mark_paid(run.id, PayoutMethod.SAVINGS_ACCOUNT, staff)
        place_orders(buyer, checkout({products["besek-bambu-banjarnegara"]: 200}))
        db.session.remove()


def state(app) -> dict:  # type: ignore[no-untyped-def]
    """Every ledger account's balance, and the number of orders, payments and refunds."""
    with app.app_context():
        balances = {
            (kind, facility, wbp): balance
            for kind, facility, wbp, balance in db.session.execute(
                select(
                    LedgerAccount.kind,
                    LedgerAccount.facility_id,
                    LedgerAccount.wbp_id,
                    LedgerAccount.balance,
                )
            )
        }
        counts = {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Order, Payment, Refund)
        }
        db.session.remove()
    return {"balances": balances, "counts": counts}


def damage(app) -> None:  # type: ignore[no-untyped-def]
    """Rows lost from the ledger and a sale made after the backup."""
    with app.app_context():
        db.session.execute(
            text("DELETE FROM ledger_entry WHERE id IN (SELECT id FROM ledger_entry LIMIT 3)")
        )
        db.session.execute(text("DELETE FROM payment WHERE id = (SELECT max(id) FROM payment)"))
        db.session.execute(text("UPDATE ledger_account SET balance = balance + 1"))
        db.session.commit()
        db.session.remove()


# --- SQLite --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sold_database(tmp_path_factory) -> Path:
    """Built once: a migrated SQLite file with the demo sales; each test works on a copy."""
    path = tmp_path_factory.mktemp("template") / "karya.db"
    app = make_app(f"sqlite:///{path}")
    sell(app)
    close(app)
    assert not Path(f"{path}-wal").exists()  # checkpointed: the file alone is the database
    return path


@pytest.fixture
def live(sold_database, tmp_path):  # type: ignore[no-untyped-def]
    """(app, path of its database file, folder for backups)."""
    path = tmp_path / "live" / "karya.db"
    path.parent.mkdir()
    shutil.copyfile(sold_database, path)
    backups = tmp_path / "backups"
    backups.mkdir()
    app = make_app(f"sqlite:///{path}")
    yield app, path, backups
    close(app)


def assert_refused(result, exit_code: int, words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == exit_code, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("harm", ["rows", "file"])
def test_a_restore_brings_back_the_ledger_orders_and_payments(live, harm):
    app, path, backups = live
    before = state(app)
    assert before["counts"] == {"Order": 4, "Payment": 3, "Refund": 1}
    assert len(before["balances"]) > 10

    made = cli(app, "backup", "create", str(backups / "karya-1.db"))
    assert made.exit_code == 0, made.output
    assert f"Backup written: {backups / 'karya-1.db'}" in made.output
    assert "customer_order" in made.output and "premi" in made.output
    assert [p.name for p in backups.iterdir()] == ["karya-1.db"]  # no partial file left

    if harm == "rows":
        damage(app)
        assert state(app) != before
        assert not ledger_check(app)
    else:
        close(app)
        for leftover in path.parent.iterdir():
            leftover.unlink()

    restored = cli(app, "backup", "restore", str(backups / "karya-1.db"), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "Ledger OK" in restored.output
    assert state(app) == before
    assert ledger_check(app)


def test_a_backup_taken_during_a_write_is_consistent(live):
    """A writer holding its transaction open neither blocks the backup nor leaks into it."""
    app, path, backups = live
    before = state(app)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE ledger_account SET balance = balance + 1000")
        made = cli(app, "backup", "create", str(backups / "during.db"))
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert made.exit_code == 0, made.output
    assert state(app) != before  # the write did land, after the copy began
    assert cli(app, "backup", "restore", str(backups / "during.db"), "--yes").exit_code == 0
    assert state(app) == before


def test_restore_asks_for_yes_and_changes_nothing_without_it(live):
    app, _path, backups = live
    assert cli(app, "backup", "create", str(backups / "karya.db")).exit_code == 0
    damage(app)
    damaged = state(app)
    assert_refused(cli(app, "backup", "restore", str(backups / "karya.db")), 2, "--yes")
    assert state(app) == damaged


def foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('daftar belanja')")
    conn.close()


def older_migration(path: Path, backup: Path) -> None:
    shutil.copyfile(backup, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '034d665d1c57'")
    conn.close()


def truncated(path: Path, backup: Path) -> None:
    path.write_bytes(backup.read_bytes()[: 16 * 4096])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p, _b: p.write_text("bukan basis data\n"), "is not a SQLite database"),
        (lambda p, _b: p.write_bytes(b""), "is not a SQLite database"),
        (lambda p, _b: foreign_sqlite(p), "not a Karya Binaan database"),
        (older_migration, "is at migration 034d665d1c57"),
        (truncated, "failed"),
    ],
    ids=["text", "empty", "another-app", "older-migration", "truncated"],
)
def test_restore_refuses_what_is_not_this_apps_database_and_changes_nothing(live, make, words):
    app, path, backups = live
    assert cli(app, "backup", "create", str(backups / "good.db")).exit_code == 0
    before = state(app)
    wrong = backups / "wrong.db"
    make(wrong, backups / "good.db")
    assert_refused(cli(app, "backup", "restore", str(wrong), "--yes"), 1, words)
    assert state(app) == before
    assert ledger_check(app)


def test_create_refuses_to_overwrite_and_needs_an_existing_folder(live):
    app, _path, backups = live
    existing = backups / "karya.db"
    existing.write_text("an older backup")
    assert_refused(cli(app, "backup", "create", str(existing)), 1, "already exists")
    assert existing.read_text() == "an older backup"
    assert_refused(cli(app, "backup", "create", str(backups / "no" / "k.db")), 1, "does not exist")
    assert sorted(p.name for p in backups.iterdir()) == ["karya.db"]


def test_restore_refuses_the_live_database_itself(live):
    app, path, _backups = live
    assert_refused(cli(app, "backup", "restore", str(path), "--yes"), 1, "live database itself")


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_the_commands_point_postgresql_to_pg_dump_and_pg_restore(tmp_path):
    app = make_app("postgresql+psycopg://postgres@127.0.0.1:5432/karya")  # never connected to
    made = cli(app, "backup", "create", str(tmp_path / "karya.db"))
    assert_refused(made, 2, "pg_dump -Fc")
    assert not (tmp_path / "karya.db").exists()
    restored = cli(app, "backup", "restore", str(tmp_path / "karya.db"), "--yes")
    assert_refused(restored, 2, "pg_restore --clean --if-exists --no-owner")
    close(app)


def libpq(url: str) -> str:
    """The URL as pg_dump and pg_restore take it: no SQLAlchemy driver name."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_pg_dump_and_pg_restore_as_documented_bring_back_the_ledger(tmp_path):
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian: postgresql-client)")
    server, reason = postgres_server()
    if server is None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    dump = tmp_path / f"karya-{uuid.uuid4().hex[:6]}.dump"
    with fresh_postgres_database(server) as url, fresh_postgres_database(server) as spare_url:
        app = make_app(url)
        sell(app)
        before = state(app)
        assert before["counts"] == {"Order": 4, "Payment": 3, "Refund": 1}
        close(app)
        subprocess.run(
            ["pg_dump", "-Fc", "--no-owner", "-f", str(dump), libpq(url)], check=True, timeout=120
        )

        damage(app)
        assert state(app) != before
        close(app)
        restore = ["pg_restore", "--clean", "--if-exists", "--no-owner", "-d"]
        subprocess.run([*restore, libpq(url), str(dump)], check=True, timeout=120)
        assert state(app) == before
        assert ledger_check(app)
        close(app)

        # And into a new, empty database, as when the server itself is lost.
        subprocess.run([*restore, libpq(spare_url), str(dump)], check=True, timeout=120)
        spare = make_app(spare_url)
        assert state(spare) == before
        assert ledger_check(spare)
        close(spare)
