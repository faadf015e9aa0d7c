"""Command-line tools operators rely on: `flask --app shop seed-demo` and friends."""

from __future__ import annotations

import time
from email.message import EmailMessage

import click
from flask import Flask, current_app

from . import mail
from .extensions import db

# Messages per query; each is committed as it goes, so an interrupted run loses nothing.
BATCH_SIZE = 100


def _console_sender(message: EmailMessage) -> None:
    """Development default: the message goes to the terminal instead of a mail server."""
    click.echo(f"To: {message['To']}\nSubject: {message['Subject']}\n\n{message.get_content()}")
    click.echo("-" * 72)


def _send_all() -> tuple[int, int]:
    """Sends what is pending, batch after batch, until a batch is short or something failed."""
    send = mail.smtp_sender() if current_app.config["MAIL_SERVER"] else _console_sender
    sent = failed = 0
    while True:
        batch_sent, batch_failed = mail.send_pending(send, limit=BATCH_SIZE)
        sent, failed = sent + batch_sent, failed + batch_failed
        # After a failure the server is likely down: the rest waits for the next run.
        if batch_failed or batch_sent < BATCH_SIZE:
            return sent, failed


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Load the demo facilities, products, batches and (fictional) makers. Safe to repeat."""
        from catalog import demo

        demo.seed()
        click.echo("Demo data loaded.")

    @app.cli.command("send-mail")
    @click.option(
        "--loop",
        "interval",
        type=click.IntRange(min=1),
        metavar="SECONDS",
        help="Keep sending every SECONDS seconds until interrupted (for a worker process).",
    )
    def send_mail(interval: int | None) -> None:
        """Send the messages waiting in the outbox (to the terminal when MAIL_SERVER is unset)."""
        if interval is None:
            sent, failed = _send_all()
            click.echo(f"Sent {sent}, failed {failed}.")
            if failed:
                click.get_current_context().exit(1)
            return
        try:
            while True:
                sent, failed = _send_all()
                if sent or failed:
                    click.echo(f"Sent {sent}, failed {failed}.")
                db.session.remove()  # no connection held while sleeping
                time.sleep(interval)
        except KeyboardInterrupt:
            click.echo("Stopped.")
