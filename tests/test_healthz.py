"""/healthz answers 503 when the database cannot be reached, so a load balancer stops sending."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shop import create_app, web
from shop.extensions import db

from .databases import postgres_server


def unreachable_url(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'karya.db'}"
    server, reason = postgres_server()
    if server is None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    missing = f"karya_missing_{uuid.uuid4().hex[:8]}"
    return make_url(server).set(database=missing).render_as_string(hide_password=False)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_app_whose_database_is_missing_answers_503(kind, tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": unreachable_url(kind, tmp_path)})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable"}
    with app.app_context():
        db.engine.dispose()


def test_a_database_error_answers_503(client, monkeypatch):
    assert client.get("/healthz").status_code == 200
    # The database answers, but with an error: as when a table or a permission is gone.
    monkeypatch.setattr(web, "text", lambda _sql: text("SELECT * FROM no_such_table"))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable"}
