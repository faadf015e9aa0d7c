"""The Stripe webhook. (Buyer and staff payment pages live beside it.)"""

from __future__ import annotations

import logging

import stripe
from flask import Blueprint, abort, current_app, request

from shop.extensions import csrf

from . import stripe_gateway

log = logging.getLogger(__name__)

bp = Blueprint("payments", __name__)

# Events older than this are refused: a captured request cannot be replayed later.
WEBHOOK_TOLERANCE_SECONDS = 300


@bp.post("/payments/stripe/webhook")
@csrf.exempt  # Stripe signs the request; no browser posts it
def stripe_webhook() -> tuple[dict[str, str], int]:
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        abort(404)
    payload = request.get_data()
    try:
        event = stripe.Webhook.construct_event(
            payload,
            request.headers.get("Stripe-Signature", ""),
            secret,
            tolerance=WEBHOOK_TOLERANCE_SECONDS,
        )
    except (ValueError, stripe.SignatureVerificationError) as error:
        log.warning("refused stripe webhook from %s: %s", request.remote_addr, error)
        return {"error": "invalid signature or payload"}, 400
    outcome = stripe_gateway.handle_event(event.to_dict())
    return {"outcome": outcome}, 200
