"""The schema comes from Alembic migrations, and they match the models on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect

from shop import create_app
from shop.extensions import db

from .databases import fresh_postgres_database, postgres_server


def migrated_differences(url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            tables = set(inspect(conn).get_table_names())
        db.engine.dispose()
    return differences, tables


def check(url):
    differences, tables = migrated_differences(url)
    assert differences == []
    assert {"facility", "product", "production_batch", "wbp", "batch_participation"} <= tables


def test_migrations_match_models_on_sqlite(tmp_path):
    check(f"sqlite:///{tmp_path / 'migrated.db'}")


def test_migrations_match_models_on_postgresql():
    server, reason = postgres_server()
    if server is None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    with fresh_postgres_database(server) as url:
        check(url)
