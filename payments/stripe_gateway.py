"""Card payments through Stripe PaymentIntents.

An order is paid only from what Stripe says (its webhook, or asking it about the intent), never
from the browser's redirect. Each event id is handled once; events may come twice or out of order.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import stripe
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from orders.models import Order, PaymentMethod
from shop import audit
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
NETWORK_RETRIES = 1  # with the calls' idempotency keys, a retry cannot charge or refund twice
# Attempts whose money is settled: a later event about their intent changes nothing.
SETTLED = frozenset({AttemptStatus.SUCCEEDED, AttemptStatus.RETURNING, AttemptStatus.RETURNED})
# A refund call started longer ago than this died with its process: another may start.
RETURN_CLAIM = timedelta(minutes=10)


def configured() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def client() -> stripe.StripeClient:
    config = current_app.config
    bases = {"api": config["STRIPE_API_BASE"]} if config.get("STRIPE_API_BASE") else None
    # Bounded: the library waits 80 s a try by default, and gunicorn kills a worker after 30 s,
    # so a slow Stripe would turn a cancellation (committed before the call) into a dead page.
    return stripe.StripeClient(
        config["STRIPE_SECRET_KEY"],
        base_addresses=bases,
        max_network_retries=NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=float(config["STRIPE_TIMEOUT_SECONDS"])),
    )


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
        if attempt.status in SETTLED:
            return f"no change: intent succeeded, attempt {attempt.status}"
        order = services.locked_order(attempt.order_id)
        refusal = services.card_refusal(order, attempt.amount)
        if refusal:
            # Stripe took the money for an order cancelled meanwhile (in another tab, while the
            # card page was open) or now owing less: it goes back whole once this commits
            # (`return_refused`). A 500 would only make Stripe retry for days.
            log.warning(
                "payment intent %s succeeded but order %s refuses it (%s): returning it",
                intent.get("id"),
                attempt.order_id,
                refusal,
            )
            attempt.status = AttemptStatus.RETURNING
            attempt.failure = refusal
            return "refused: the order takes no payment; the intent is returned"
        services.record_payment(
            order, PaymentMethod.CARD, attempt.amount, date.today(), reference=attempt.intent_id
        )
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
        outcome = _handle_once(event)
    except IntegrityError:
        # Delivered twice at once: both passed the check in _handle_once before either was recorded,
        # and the other delivery committed first. This one's writes were rolled back.
        if db.session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event["id"])):
            return "duplicate"
        raise
    obj = (event.get("data") or {}).get("object") or {}
    if outcome != "duplicate" and event.get("type", "").startswith("payment_intent."):
        _return_intent(obj.get("id"))  # after the commit: no row is locked during the call
    return outcome


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
    return outcomes + return_refused(order_id)


def return_refused(order_id: int, user: User | None = None) -> list[str]:
    """Refunds at Stripe the card payments the order refused and still holds: the retry of a
    refund that could not be made when the payment was refused. `user`: staff asked for it."""
    owed = db.session.scalars(
        select(CardAttempt.id)
        .where(CardAttempt.order_id == order_id, CardAttempt.status == AttemptStatus.RETURNING)
        .order_by(CardAttempt.id)
    ).all()
    return [return_attempt(attempt_id, user) for attempt_id in owed]


def _return_intent(intent_id: str | None) -> None:
    attempt_id = db.session.scalar(
        select(CardAttempt.id).where(
            CardAttempt.intent_id == intent_id, CardAttempt.status == AttemptStatus.RETURNING
        )
    )
    if attempt_id is not None:
        log.info("payment intent %s: %s", intent_id, return_attempt(attempt_id))


def return_attempt(attempt_id: int, user: User | None = None) -> str:
    """Refunds a refused card payment whole at Stripe, once however often it is asked.

    Only one call at a time: the attempt is claimed under its row lock and the claim committed
    before Stripe is called. A call repeated after its process died (its claim is old) uses the
    same idempotency key, so Stripe answers with the first refund instead of making a second.
    A failed call gives the claim back: the attempt stays owed back, shown to finance, and is
    tried again by `return_refused` (finance's button, or `reconcile`).
    """
    if not configured():
        log.error("card attempt %s is owed back, but Stripe is not configured", attempt_id)
        return "not returned: Stripe is not configured"
    with write_transaction():
        attempt = db.session.get(CardAttempt, attempt_id, with_for_update=True)
        if attempt is None or attempt.status is not AttemptStatus.RETURNING:
            return "no change: nothing to return"
        started = attempt.return_started_at
        if started is not None and services.now() - started < RETURN_CLAIM:
            return "no change: the refund is being made"
        attempt.return_started_at = services.now()
        intent_id, amount = attempt.intent_id, attempt.amount
    refund: Any = None
    try:
        refund = client().v1.refunds.create(
            params={
                "payment_intent": intent_id,
                "amount": amount * CENTS,  # the whole payment: never more than was taken
                "metadata": {"attempt_id": str(attempt_id)},
            },
            options={"idempotency_key": f"attempt-{attempt_id}-return"},
        )
    except stripe.StripeError:
        log.exception("card attempt %s (%s): Stripe made no refund", attempt_id, intent_id)
    if refund is not None and refund.status in {"failed", "canceled"}:
        log.error(
            "card attempt %s (%s): refund %s %s", attempt_id, intent_id, refund.id, refund.status
        )
        refund = None
    with write_transaction():
        attempt = db.session.get(CardAttempt, attempt_id, with_for_update=True)
        if refund is None:
            attempt.return_started_at = None  # for the next try
            return "not returned: Stripe refused or could not be reached"
        before = audit.snapshot(attempt)
        attempt.refund_id = refund.id
        attempt.status = AttemptStatus.RETURNED
        if user is not None:
            audit.record(
                "card_return", attempt, facility_id=attempt.order.facility_id, before=before
            )
    log.info("card attempt %s (%s) returned by Stripe refund %s", attempt_id, intent_id, refund.id)
    return "returned"


def cancel_untaken_intents(order_id: int) -> list[str]:
    """Cancels at Stripe the order's pending intents it would refuse if paid: all of them once
    it is cancelled, those for more than is due once it owes less. Call it after the change has
    committed: Stripe is never called under the order's row lock. Safe to run twice.

    The order's change stands whatever Stripe says. An intent Stripe does not cancel (the buyer
    paid it a moment ago) or that it cannot be reached for stays pending: when its success is
    reported, the order refuses it and the money goes back (`apply_intent`, `return_attempt`).
    """
    order = db.session.get(Order, order_id)
    pending = db.session.scalars(
        select(CardAttempt)
        .where(
            CardAttempt.order_id == order_id,
            CardAttempt.status == AttemptStatus.PENDING,
            CardAttempt.intent_id.is_not(None),
        )
        .order_by(CardAttempt.id)
    ).all()
    untaken = [
        (a.id, a.intent_id, refusal)
        for a in pending
        if (refusal := services.card_refusal(order, a.amount))
    ]
    if untaken and not configured():
        log.error("order %s: its intents stay at Stripe, which is not configured", order_id)
        return []
    outcomes = []
    for attempt_id, intent_id, refusal in untaken:
        try:
            client().v1.payment_intents.cancel(intent_id)
        except stripe.StripeError as error:
            log.warning("order %s: payment intent %s not cancelled: %s", order_id, intent_id, error)
            outcomes.append("not cancelled")
            continue
        with write_transaction():
            attempt = db.session.get(CardAttempt, attempt_id, with_for_update=True)
            # Stripe's own payment_intent.canceled event may have marked it failed already.
            if attempt.status in {AttemptStatus.PENDING, AttemptStatus.FAILED}:
                attempt.status = AttemptStatus.FAILED
                attempt.failure = refusal
        outcomes.append("cancelled")
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
