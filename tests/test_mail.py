"""The mail outbox: requests only queue, `flask send-mail` delivers and retries what failed."""

import smtplib
import socket

import pytest
from sqlalchemy import select

from shop import mail
from shop.extensions import db, limiter
from shop.mail import OutboxMessage

from .helpers import post_form


@pytest.fixture(autouse=True)
def fresh_limits(app):
    limiter.reset()


@pytest.fixture
def mail_server(app):
    """Sets MAIL_SERVER and friends for one test, and puts the development default back."""
    saved = {key: app.config[key] for key in ("MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS")}

    def configure(server: str, port: int = 587) -> None:
        app.config.update(MAIL_SERVER=server, MAIL_PORT=port, MAIL_USE_TLS=False)

    configure("")
    yield configure
    app.config.update(saved)


def closed_port() -> int:
    """A local port where nothing listens: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def queue_order_mails():
    mail.queue("sari@example.id", "Pesanan 1.600 besek", "Pesanan Anda sedang disiapkan.")
    mail.queue("budi@example.id", "Pesanan 40 keset", "Keset kain perca siap dikirim.")
    db.session.commit()


def outbox():
    db.session.rollback()  # see what another session committed
    return db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


def test_pending_messages_are_sent_and_marked(app_ctx):
    queue_order_mails()
    delivered = []

    assert mail.send_pending(delivered.append) == (2, 0)

    assert [(m["To"], m["Subject"]) for m in delivered] == [
        ("sari@example.id", "Pesanan 1.600 besek"),
        ("budi@example.id", "Pesanan 40 keset"),
    ]
    assert "sedang disiapkan" in delivered[0].get_content()
    assert all(m.sent_at is not None and m.attempts == 1 for m in outbox())
    assert mail.send_pending(delivered.append) == (0, 0)  # nothing is sent twice
    assert len(delivered) == 2


def test_a_failed_send_is_kept_and_retried(app_ctx):
    mail.queue("sari@example.id", "Pesanan 1.600 besek", "Pesanan Anda sedang disiapkan.")
    db.session.commit()

    def server_down(_message):
        raise ConnectionRefusedError(111, "Connection refused")

    assert mail.send_pending(server_down) == (0, 1)
    [message] = outbox()
    assert message.sent_at is None
    assert message.attempts == 1
    assert "ConnectionRefusedError" in message.last_error

    delivered = []
    assert mail.send_pending(delivered.append) == (1, 0)
    [message] = outbox()
    assert message.sent_at is not None
    assert message.attempts == 2
    assert delivered[0]["To"] == "sari@example.id"


def test_without_a_mail_server_the_command_prints_the_messages(app, app_ctx, mail_server):
    queue_order_mails()

    result = app.test_cli_runner().invoke(args=["send-mail"])

    assert result.exit_code == 0, result.output
    assert "To: sari@example.id" in result.output
    assert "Subject: Pesanan 1.600 besek" in result.output
    assert "Keset kain perca siap dikirim." in result.output
    assert "Sent 2, failed 0." in result.output
    assert all(m.sent_at is not None for m in outbox())


def test_the_command_fails_when_the_mail_server_is_unreachable(app, app_ctx, mail_server):
    queue_order_mails()
    mail_server("127.0.0.1", closed_port())

    result = app.test_cli_runner().invoke(args=["send-mail"])

    assert result.exit_code == 1
    assert "Sent 0, failed 2." in result.output
    assert all(m.sent_at is None and "ConnectionRefused" in m.last_error for m in outbox())


def test_the_worker_loop_sends_until_interrupted(app, app_ctx, mail_server, monkeypatch):
    queue_order_mails()
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the worker waits
        mail.queue("wulan@example.id", "Keset 40 buah", "Pesanan kedua.")
        db.session.commit()

    monkeypatch.setattr("shop.cli.time.sleep", sleep)
    result = app.test_cli_runner().invoke(args=["send-mail", "--loop", "30"])

    assert result.exit_code == 0, result.output
    assert naps == [30, 30]
    assert result.output.count("To: ") == 3
    assert result.output.rstrip().endswith("Stopped.")
    assert all(m.sent_at is not None for m in outbox())


def test_the_loop_interval_must_be_a_positive_number(app):
    result = app.test_cli_runner().invoke(args=["send-mail", "--loop", "0"])
    assert result.exit_code == 2
    assert "--loop" in result.output


def test_a_request_never_waits_for_the_mail_server(client, users, mail_server, monkeypatch):
    mail_server("127.0.0.1", closed_port())
    connections = []
    monkeypatch.setattr(smtplib, "SMTP", lambda *args, **kwargs: connections.append(args))

    response = post_form(client, "/password/forgot", {"email": "buyer@example.id"})

    assert response.status_code == 302
    [message] = outbox()
    assert message.recipient == "buyer@example.id"
    assert message.sent_at is None and message.attempts == 0
    assert connections == []  # nothing was sent during the request
