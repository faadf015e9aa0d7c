"""Outgoing mail through an outbox table: a request only queues; `flask send-mail` delivers.

A mail server that is down therefore never fails a request, and a message is never lost.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

MAX_ATTEMPTS = 10


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


def queue(recipient: str, subject: str, body: str) -> OutboxMessage:
    """Adds a message to the current transaction; it is sent only if that transaction commits."""
    message = OutboxMessage(recipient=recipient, subject=subject, body=body)
    db.session.add(message)
    return message


Sender = Callable[[EmailMessage], None]


def smtp_sender() -> Sender:
    config = current_app.config

    def send(message: EmailMessage) -> None:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls()
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)

    return send


def send_pending(send: Sender, limit: int = 100) -> tuple[int, int]:
    """Sends unsent messages; returns (sent, failed). A failure is recorded and retried later."""
    pending = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < MAX_ATTEMPTS)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    sent = failed = 0
    for item in pending:
        message = EmailMessage()
        message["From"] = current_app.config["MAIL_FROM"]
        message["To"] = item.recipient
        message["Subject"] = item.subject
        message.set_content(item.body)
        item.attempts += 1
        try:
            send(message)
        except (OSError, smtplib.SMTPException) as error:
            item.last_error = f"{type(error).__name__}: {error}"
            failed += 1
        else:
            item.sent_at = datetime.now(UTC).replace(tzinfo=None)
            sent += 1
        db.session.commit()
    return sent, failed
