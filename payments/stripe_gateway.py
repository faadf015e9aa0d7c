"""Card payments through Stripe PaymentIntents.

An order is paid only from what Stripe says (its webhook, or asking it about the intent), never
from the browser's redirect. Each event id is handled once; events may come twice or out of order.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import stripe
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from orders.models import PaymentMethod
from shop.accounts.models import User
from shop.database import write_transaction
from shop.extensions import db
from shop.i18n import gettext as _

from . import services
from .models import AttemptStatus, CardAttempt, Refund, RefundStatus, StripeEvent
from .services import PaymentRefused

log = logging.getLogger(__name__)

CURRENCY = "idr"
CENTS = 100  # Stripe treats IDR as a two-decimal currency


def configured() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def client() -> stripe.StripeClient:
    config = current_app.config
    bases = {"api": config["STRIPE_API_BASE"]} if config.get("STRIPE_API_BASE") else None
    return stripe.StripeClient(config["STRIPE_SECRET_KEY"], base_addresses=bases)


def start_card_payment(order_id: int, buyer: User) -> CardAttempt:
    """The attempt to pay what is due by card, with its PaymentIntent; safe to call again.

    The attempt row (and its idempotency key) is committed before Stripe is called: a retry
    finds it and reuses its intent instead of making a second one.
    """
    if not configured():
        raise PaymentRefused([_("Card payment is not available.")])
    with write_transaction():
        order = services.locked_order(order_id)
        if order.buyer_id != buyer.id:
            raise PaymentRefused([_("That order does not exist.")])
        if not services.payable(order):
            raise PaymentRefused([_("This order has nothing to pay now.")])
        due = services.amount_due(order)
        attempt = db.session.scalar(
            select(CardAttempt)
            .where(
                CardAttempt.order_id == order.id,
                CardAttempt.status == AttemptStatus.PENDING,
                CardAttempt.amount == due,
            )
            .order_by(CardAttempt.id.desc())
        )
        if attempt is None:
            number = (
                db.session.scalar(
                    select(func.coalesce(func.max(CardAttempt.number), 0)).where(
                        CardAttempt.order_id == order.id
                    )
                )
                or 0
            ) + 1
            attempt = CardAttempt(
                order_id=order.id,
                number=number,
                idempotency_key=f"order-{order.id}-attempt-{number}",
                amount=due,
            )
            db.session.add(attempt)
            db.session.flush()
        attempt_id, key, reference = attempt.id, attempt.idempotency_key, order.reference
    if attempt.intent_id is None:
        intent = client().v1.payment_intents.create(
            params={
                "amount": due * CENTS,
                "currency": CURRENCY,
                "payment_method_types": ["card"],
                "metadata": {
                    "order_id": str(order_id),
                    "attempt_id": str(attempt_id),
                    "reference": reference,
                },
            },
            options={"idempotency_key": key},
        )
        with write_transaction():
            attempt = db.session.get(CardAttempt, attempt_id, with_for_update=True)
            if attempt.intent_id is None:
                attempt.intent_id = intent.id
    return attempt


def client_secret(attempt: CardAttempt) -> str:
    return client().v1.payment_intents.retrieve(attempt.intent_id).client_secret


def apply_intent(intent: dict[str, Any]) -> str:
    """Brings our records in line with an intent's state; returns what happened, for the log.

    Runs inside the caller's transaction.
    """
    attempt = db.session.scalar(
        select(CardAttempt).where(CardAttempt.intent_id == intent.get("id")).with_for_update()
    )
    if attempt is None:
        return "ignored: unknown payment intent"
    status = intent.get("status")
    if status == "succeeded":
        metadata = intent.get("metadata") or {}
        if (
            intent.get("amount") != attempt.amount * CENTS
            or intent.get("currency") != CURRENCY
            or str(metadata.get("order_id")) != str(attempt.order_id)
        ):
            log.warning(
                "refused payment intent %s: amount %s %s for order %s, expected %s idr",
                intent.get("id"),
                intent.get("amount"),
                intent.get("currency"),
                metadata.get("order_id"),
                attempt.amount * CENTS,
            )
            return "refused: amount, currency or order does not match"
        order = services.locked_order(attempt.order_id)
        try:
            services.record_payment(
                order, PaymentMethod.CARD, attempt.amount, date.today(), reference=attempt.intent_id
            )
        except PaymentRefused as refused:
            # Stripe took the money for an order cancelled meanwhile (in another tab, while the
            # card page was open). A 500 would only make Stripe retry for days: log it for a refund.
            log.warning(
                "payment intent %s succeeded but order %s refuses it (%s): refund it at Stripe",
                intent.get("id"),
                attempt.order_id,
                refused,
            )
            return "refused: the order takes no payment; refund the intent"
        attempt.status = AttemptStatus.SUCCEEDED
        return "paid"
    if (
        status in {"requires_payment_method", "canceled"}
        and attempt.status is AttemptStatus.PENDING
    ):
        error = intent.get("last_payment_error") or {}
        attempt.status = AttemptStatus.FAILED
        attempt.failure = str(error.get("message") or status)
        return "failed: the order can be paid again"
    return f"no change: intent {status}, attempt {attempt.status}"


def _apply_refunds(charge: dict[str, Any]) -> str:
    refunds = (charge.get("refunds") or {}).get("data") or []
    confirmed = 0
    for item in refunds:
        if item.get("status") != "succeeded":
            continue
        refund = db.session.scalar(
            select(Refund).where(Refund.stripe_refund_id == item.get("id")).with_for_update()
        )
        if refund is not None and services.confirm_refund(refund):
            confirmed += 1
    return f"refunds confirmed: {confirmed}"


def handle_event(event: dict[str, Any]) -> str:
    """Handles a verified event once; the same event id again changes nothing."""
    try:
        return _handle_once(event)
    except IntegrityError:
        # Delivered twice at once: both passed the check in _handle_once before either was recorded,
        # and the other delivery committed first. This one's writes were rolled back.
        if db.session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event["id"])):
            return "duplicate"
        raise


def _handle_once(event: dict[str, Any]) -> str:
    with write_transaction():
        if db.session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event["id"])):
            return "duplicate"
        kind = event.get("type", "")
        obj = (event.get("data") or {}).get("object") or {}
        if kind.startswith("payment_intent."):
            outcome = apply_intent(obj)
        elif kind == "charge.refunded":
            outcome = _apply_refunds(obj)
        else:
            outcome = "ignored: event type not used"
        db.session.add(StripeEvent(event_id=event["id"], type=kind, outcome=outcome))
    log.info("stripe event %s %s: %s", event["id"], kind, outcome)
    return outcome


def reconcile(order_id: int) -> list[str]:
    """Asks Stripe about the order's pending intents: the answer when a webhook is late or lost."""
    pending = db.session.scalars(
        select(CardAttempt).where(
            CardAttempt.order_id == order_id,
            CardAttempt.status == AttemptStatus.PENDING,
            CardAttempt.intent_id.is_not(None),
        )
    ).all()
    outcomes = []
    for attempt in pending:
        intent = client().v1.payment_intents.retrieve(attempt.intent_id).to_dict()
        with write_transaction():
            outcomes.append(apply_intent(intent))
    return outcomes


def refund_by_card(refund: Refund) -> None:
    """Asks Stripe to refund; the `charge.refunded` event confirms it later."""
    intent_id = db.session.scalar(
        select(CardAttempt.intent_id).where(
            CardAttempt.order_id == refund.order_id,
            CardAttempt.status == AttemptStatus.SUCCEEDED,
        )
    )
    if intent_id is None:
        raise PaymentRefused([_("No card payment to refund on this order.")])
    stripe_refund = client().v1.refunds.create(
        params={"payment_intent": intent_id, "amount": refund.amount * CENTS},
        options={"idempotency_key": f"refund-{refund.id}"},
    )
    with write_transaction():
        row = db.session.get(Refund, refund.id, with_for_update=True)
        row.stripe_refund_id = stripe_refund.id
        if stripe_refund.status == "failed":
            row.status = RefundStatus.FAILED
