"""Command-line tools operators rely on: `flask --app shop seed-demo` and friends."""

from __future__ import annotations

import time
from email.message import EmailMessage

import click
from flask import Flask, current_app

from . import backup, mail
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
        from payments import demo as payment_demo

        demo.seed()
        payment_demo.seed()
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

    ledger = click.Group("ledger", help="The money ledger.")
    app.cli.add_command(ledger)

    @ledger.command("check")
    def ledger_check() -> None:
        """Checks every invariant of the ledger; exits 1 on any breach."""
        from finance import checks

        found = checks.problems()
        for problem in found:
            click.echo(f"BREACH: {problem}", err=True)
        if found:
            raise SystemExit(1)
        click.echo("Ledger OK: every posting balances and every balance matches its entries.")

    backup.register(app.cli)

    payouts = click.Group("payouts", help="Premi payout runs.")
    app.cli.add_command(payouts)

    @payouts.command("run")
    @click.option("--facility", "slug", required=True, help="facility slug, e.g. rutan-magetan")
    @click.option("--period", required=True, help="a month, YYYY-MM")
    def payouts_run(slug: str, period: str) -> None:
        """Plans a draft payout run for a facility and month and prints what each WBP gets."""
        import calendar
        from datetime import date

        from sqlalchemy import select

        from catalog.models import Facility, Wbp
        from finance import payouts as runs
        from shop.extensions import db

        facility = db.session.scalar(select(Facility).where(Facility.slug == slug))
        if facility is None:
            raise click.BadParameter(f"no facility {slug!r}", param_hint="--facility")
        try:
            year, month = (int(part) for part in period.split("-"))
            start = date(year, month, 1)
        except ValueError as error:
            raise click.BadParameter("use YYYY-MM", param_hint="--period") from error
        end = date(year, month, calendar.monthrange(year, month)[1])
        run = runs.plan_run(facility.id, start, end, None)
        names = dict(db.session.execute(select(Wbp.id, Wbp.registration_number)).tuples().all())
        for line in run.lines:
            click.echo(f"{names[line.wbp_id]}\towed {line.balance}\tpay {line.amount}")
        click.echo(f"Draft run {run.id}: {sum(x.amount for x in run.lines)} rupiah to pay.")
