"""The payment pages: a buyer pays an order and follows its payments; staff, finance and admin
of the order's facility confirm money received, refund, and open the buyer's transfer proofs.

Buyer routes are on the payments blueprint, staff routes on the orders back office's. The
browser's return from the card page proves nothing: the payments page asks Stripe itself.
A refused action re-renders its page with the reasons, status 422 (a form error) or 409 (the
order's state does not allow it), having changed nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import stripe
from flask import (
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload, undefer

from catalog.models import Facility
from orders.lifecycle import OrderStatus
from orders.models import DeliveryMethod, Order, OrderLine, PaymentMethod
from orders.office import bp as office_bp
from orders.views import buyer_order_or_404
from shop import audit, policy
from shop.accounts.models import Role, User
from shop.database import write_transaction
from shop.extensions import db
from shop.formatting import rupiah
from shop.i18n import gettext as _
from shop.i18n import lazy_gettext as _l
from shop.policy import roles_required
from shop.web import content_security_policy

from . import services, stripe_gateway
from .forms import (
    MAX_PROOF_BYTES,
    PDF,
    CardForm,
    CleanProof,
    ProofForm,
    ReceiptForm,
    RefundForm,
    ReturnForm,
    refund_form,
)
from .models import (
    AttemptStatus,
    BankAccount,
    CardAttempt,
    Payment,
    Refund,
    RefundLine,
    RefundStatus,
    TransferProof,
)
from .refunds import request_refund
from .services import PaymentRefused
from .views import bp

log = logging.getLogger(__name__)

Page = tuple[str, int]
INVALID = 422
REFUSED = 409
UNAVAILABLE = 503  # Stripe could not be reached

# Enough for a transfer paid in parts; a limit, because each proof is kept in the database.
MAX_PROOFS_PER_ORDER = 20

STRIPE_API = "https://api.stripe.com"
# The real Stripe.js opens its 3-D Secure frames from here; a local fake needs nothing more.
STRIPE_JS_ORIGIN = "https://js.stripe.com"
STRIPE_HOOKS_ORIGIN = "https://hooks.stripe.com"

ATTEMPT_LABELS = {
    AttemptStatus.PENDING: _l("Waiting for the card company"),
    AttemptStatus.SUCCEEDED: _l("Paid"),
    AttemptStatus.FAILED: _l("Not paid"),
    AttemptStatus.RETURNING: _l("Paid, but not taken by the order: being returned to the card"),
    AttemptStatus.RETURNED: _l("Returned to the card by Stripe"),
}
REFUND_LABELS = {
    RefundStatus.PENDING: _l("Sent to Stripe, waiting for its confirmation"),
    RefundStatus.SUCCEEDED: _l("Refunded"),
    RefundStatus.FAILED: _l("Failed"),
}
PROOF_KINDS = {
    "image/jpeg": ("jpg", _l("Picture")),
    "image/png": ("png", _l("Picture")),
    "image/webp": ("webp", _l("Picture")),
    PDF: ("pdf", _l("PDF")),
}

# The order pages show a "Pay" button when this says so.
bp.add_app_template_global(services.payable, "order_payable")


# What the pages show


class DueState(StrEnum):
    DUE = "due"
    PAID = "paid"
    CANCELLED = "cancelled"
    FEE_NOT_CONFIRMED = "fee_not_confirmed"
    NOTHING_DUE = "nothing_due"


def due_state(order: Order) -> DueState:
    """Why the order can or cannot be paid now; DUE exactly when `services.payable(order)`."""
    if order.status is OrderStatus.CANCELLED:
        return DueState.CANCELLED
    if services.is_paid(order.id):
        return DueState.PAID
    if order.delivery_fee is None:
        return DueState.FEE_NOT_CONFIRMED
    if services.amount_due(order) == 0:
        return DueState.NOTHING_DUE
    return DueState.DUE


@dataclass(frozen=True)
class PaymentRecord:
    """Everything that happened to an order's money, oldest first."""

    state: DueState
    total: int
    paid: int
    refunded: int
    due: int
    overpaid: int
    returning: int  # card money the order refused, not yet refunded by Stripe: never paid
    attempts: list[CardAttempt]
    payments: list[Payment]
    refunds: list[Refund]
    proofs: list[TransferProof]


def payment_record(order: Order) -> PaymentRecord:
    by_order = {"order_id": order.id}
    attempts = list(
        db.session.scalars(select(CardAttempt).filter_by(**by_order).order_by(CardAttempt.id))
    )
    return PaymentRecord(
        state=due_state(order),
        total=order.total,
        paid=services.paid_amount(order.id),
        refunded=services.refunded_amount(order.id),
        due=services.amount_due(order),
        overpaid=services.overpaid_amount(order),
        returning=sum(a.amount for a in attempts if a.status is AttemptStatus.RETURNING),
        attempts=attempts,
        payments=list(
            db.session.scalars(select(Payment).filter_by(**by_order).order_by(Payment.id))
        ),
        refunds=list(
            db.session.scalars(
                select(Refund)
                .filter_by(**by_order)
                .options(
                    selectinload(Refund.lines)
                    .joinedload(RefundLine.line)
                    .joinedload(OrderLine.product)
                )
                .order_by(Refund.id)
            )
        ),
        proofs=list(
            db.session.scalars(
                select(TransferProof).filter_by(**by_order).order_by(TransferProof.id)
            )
        ),
    )


def card_offered() -> bool:
    return stripe_gateway.configured() and bool(current_app.config.get("STRIPE_PUBLISHABLE_KEY"))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def card_page_csp() -> str:
    """The site's policy, opened to Stripe.js and the Stripe API: for the card page only."""
    config = current_app.config
    js = _origin(config["STRIPE_JS_URL"])
    api = _origin(config.get("STRIPE_API_BASE") or STRIPE_API)
    frames = [js, api, STRIPE_HOOKS_ORIGIN] if js == STRIPE_JS_ORIGIN else [js, api]
    return content_security_policy(
        {"script-src": [js], "frame-src": frames, "connect-src": [js, api]}
    )


def _context() -> dict[str, object]:
    return {
        "attempt_labels": ATTEMPT_LABELS,
        "refund_labels": REFUND_LABELS,
        "proof_kinds": PROOF_KINDS,
    }


# Writes


def add_transfer_proof(order_id: int, proof: CleanProof, buyer: User) -> TransferProof:
    """Keeps a buyer's proof of transfer for the facility to check; the buyer's own order only,
    while something is due."""
    with write_transaction():
        order = services.locked_order(order_id)
        if order.buyer_id != buyer.id:
            raise PaymentRefused([_("That order does not exist.")])
        if not services.payable(order):
            raise PaymentRefused([_("This order has nothing to pay now.")])
        kept = db.session.scalar(
            select(func.count(TransferProof.id)).where(TransferProof.order_id == order.id)
        )
        if (kept or 0) >= MAX_PROOFS_PER_ORDER:
            raise PaymentRefused(
                [
                    _(
                        "This order has %(n)s proofs already. Please ask the facility to check "
                        "them.",
                        n=MAX_PROOFS_PER_ORDER,
                    )
                ]
            )
        row = TransferProof(
            order_id=order.id,
            content_type=proof.content_type,
            data=proof.data,
            uploaded_by_id=buyer.id,
        )
        db.session.add(row)
        db.session.flush()
        audit.record("transfer_proof", row, facility_id=order.facility_id)
    return row


# The buyer's pages


def _pay_page(order: Order, status: int = 200, proof_form: ProofForm | None = None) -> Page:
    return render_template(
        "payments/pay.html",
        order=order,
        record=payment_record(order),
        card=card_offered(),
        account=db.session.get(BankAccount, order.facility_id),
        pickup=order.delivery_method is DeliveryMethod.PICKUP,
        card_form=CardForm(formdata=None),
        proof_form=proof_form or ProofForm(formdata=None),
        proof_size=MAX_PROOF_BYTES // 2**20,
        **_context(),
    ), status


def _refused(messages: list[str]) -> None:
    for message in messages:
        flash(message, "error")


@bp.get("/orders/<reference>/pay")
@roles_required(Role.BUYER)
def pay(reference: str) -> Page:
    return _pay_page(buyer_order_or_404(reference))


@bp.post("/orders/<reference>/pay/card")
@roles_required(Role.BUYER)
def pay_card(reference: str) -> Page | Response:
    """The card page for what is due; asking again reuses the attempt and its PaymentIntent."""
    order = buyer_order_or_404(reference)
    if not CardForm().validate():
        return _pay_page(order, INVALID)
    if not card_offered():
        _refused([_("Card payment is not available.")])
        return _pay_page(order, REFUSED)
    try:
        attempt = stripe_gateway.start_card_payment(order.id, current_user)
        secret = stripe_gateway.client_secret(attempt)
    except PaymentRefused as refused:
        _refused(refused.messages)
        return _pay_page(order, REFUSED)
    except stripe.StripeError:
        log.exception("card payment of order %s: Stripe could not be reached", order.reference)
        _refused(
            [
                _(
                    "Card payment is not available right now. Please try again in a moment, "
                    "or pay by bank transfer."
                )
            ]
        )
        return _pay_page(order, UNAVAILABLE)
    response = make_response(
        render_template(
            "payments/card.html",
            order=order,
            attempt=attempt,
            publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
            client_secret=secret,
            stripe_js_url=current_app.config["STRIPE_JS_URL"],
            return_url=url_for("payments.order_payments", reference=reference, attempt=attempt.id),
        )
    )
    response.headers["Content-Security-Policy"] = card_page_csp()
    response.headers["Cache-Control"] = "private, no-store"  # the page holds the client secret
    return response


@bp.post("/orders/<reference>/pay/proof")
@roles_required(Role.BUYER)
def pay_proof(reference: str) -> Page | Response:
    order = buyer_order_or_404(reference)
    form = ProofForm()
    if not form.validate() or form.clean is None:
        return _pay_page(order, INVALID, proof_form=form)
    try:
        add_transfer_proof(order.id, form.clean, current_user)
    except PaymentRefused as refused:
        _refused(refused.messages)
        return _pay_page(order, REFUSED, proof_form=form)
    flash(
        _(
            "Thank you. Your proof of transfer is sent to %(facility)s; the order shows as paid "
            "once they see the money on their account.",
            facility=order.facility.name,
        ),
        "info",
    )
    return redirect(url_for("payments.order_payments", reference=reference))


def _attempt_param(order: Order) -> CardAttempt | None:
    """The card attempt named in the query string (the card page's return), if any."""
    raw = request.args.get("attempt", "").strip()
    if not raw:
        return None
    if not raw.isdecimal() or len(raw) > 12:
        abort(
            400, description=_("Unknown value for %(name)s: %(value)s", name="attempt", value=raw)
        )
    attempt = db.session.scalar(
        select(CardAttempt).where(CardAttempt.id == int(raw), CardAttempt.order_id == order.id)
    )
    if attempt is None:
        abort(404)
    return attempt


@bp.get("/orders/<reference>/payments")
@roles_required(Role.BUYER)
def order_payments(reference: str) -> Page:
    order = buyer_order_or_404(reference)
    attempt = _attempt_param(order)
    if attempt is not None and stripe_gateway.configured():
        try:
            stripe_gateway.reconcile(order.id)
        except stripe.StripeError:
            log.exception("reconciling order %s: Stripe could not be reached", order.reference)
            flash(
                _("We could not ask the card company yet; your payment shows here once it is."),
                "error",
            )
        db.session.refresh(attempt)
    return render_template(
        "payments/payments.html",
        order=order,
        record=payment_record(order),
        attempt=attempt,
        **_context(),
    ), 200


# The back office


def _money_order(facility_id: int, order_id: int) -> tuple[Facility, Order]:
    facility = policy.facility_or_404(facility_id, policy.MONEY_ROLES)
    return facility, policy.owned_or_404(Order, order_id, facility.id)


def facility_today(facility: Facility) -> date:
    """Today where the facility is: Ruteng is an hour ahead of Java."""
    return datetime.now(ZoneInfo(facility.timezone)).date()


def _receipt_form(facility: Facility, order: Order) -> ReceiptForm:
    today = facility_today(facility)
    method = (
        order.payment_method
        if order.payment_method is not PaymentMethod.CARD
        else PaymentMethod.BANK_TRANSFER
    )
    return ReceiptForm(formdata=None, today=today, method=method.value, received_on=today)


def _office_page(
    facility: Facility,
    order: Order,
    status: int = 200,
    *,
    receipt: ReceiptForm | None = None,
    refund: RefundForm | None = None,
) -> Page:
    record = payment_record(order)
    if receipt is None:
        receipt = _receipt_form(facility, order)
    if refund is None:
        refundable = services.refundable_units(order) if services.is_paid(order.id) else {}
        refund = refund_form(order.lines, refundable, posted=False)
    return render_template(
        "payments/office_payments.html",
        facility=facility,
        order=order,
        record=record,
        receipt_form=receipt,
        refund_form=refund,
        return_form=ReturnForm(formdata=None),
        staff_links=True,
        **_context(),
    ), status


def _to_office_page(facility: Facility, order: Order, message: str) -> Response:
    flash(message, "info")
    return redirect(
        url_for("orders_office.order_payments", facility_id=facility.id, order_id=order.id)
    )


@office_bp.get("/orders/<int:order_id>/payments", endpoint="order_payments")
@login_required
def office_order_payments(facility_id: int, order_id: int) -> Page:
    facility, order = _money_order(facility_id, order_id)
    return _office_page(facility, order)


@office_bp.post("/orders/<int:order_id>/payments/received", endpoint="order_money_received")
@login_required
def office_money_received(facility_id: int, order_id: int) -> Page | Response:
    facility, order = _money_order(facility_id, order_id)
    form = ReceiptForm(today=facility_today(facility))
    if not form.validate():
        return _office_page(facility, order, INVALID, receipt=form)
    try:
        services.confirm_receipt(
            order.id,
            form.payment_method,
            form.amount.data,
            form.received_on.data,
            form.reference.data,
            current_user,
            note=form.receipt_note.data or "",
        )
    except PaymentRefused as refused:
        _refused(refused.messages)
        return _office_page(facility, order, REFUSED, receipt=form)
    return _to_office_page(
        facility,
        order,
        _(
            "%(amount)s received for order %(reference)s is recorded.",
            amount=rupiah(form.amount.data),
            reference=order.reference,
        ),
    )


@office_bp.post("/orders/<int:order_id>/refunds", endpoint="order_refund")
@login_required
def office_refund(facility_id: int, order_id: int) -> Page | Response:
    facility, order = _money_order(facility_id, order_id)
    form = refund_form(order.lines, services.refundable_units(order))
    if not form.validate():
        return _office_page(facility, order, INVALID, refund=form)
    try:
        refund = request_refund(order.id, form.quantities, form.refund_reason.data, current_user)
    except PaymentRefused as refused:
        _refused(refused.messages)
        return _office_page(facility, order, REFUSED, refund=form)
    except stripe.StripeError:
        # The refund is recorded and waits for Stripe; the message says so.
        log.exception("refund on order %s: Stripe could not be reached", order.reference)
        _refused(
            [
                _(
                    "The refund is recorded, but Stripe could not be reached. It shows as "
                    "waiting until Stripe confirms it."
                )
            ]
        )
        return _office_page(facility, order, UNAVAILABLE)
    if refund.status is RefundStatus.PENDING:
        message = _(
            "The refund of %(amount)s is sent to Stripe; it shows as refunded once Stripe "
            "confirms it.",
            amount=rupiah(refund.amount),
        )
    else:
        message = _("The refund of %(amount)s is recorded.", amount=rupiah(refund.amount))
    return _to_office_page(facility, order, message)


@office_bp.post("/orders/<int:order_id>/payments/returns", endpoint="order_card_return")
@login_required
def office_card_return(facility_id: int, order_id: int) -> Page | Response:
    """Finance ask Stripe again to refund the card payments the order refused."""
    facility, order = _money_order(facility_id, order_id)
    if not ReturnForm().validate():
        return _office_page(facility, order, INVALID)
    stripe_gateway.return_refused(order.id, current_user)
    if payment_record(order).returning:
        _refused(
            [
                _(
                    "Stripe has not refunded it yet: it could not be reached, or another refund "
                    "of it is under way. Please try again in a few minutes."
                )
            ]
        )
        return _office_page(facility, order, UNAVAILABLE)
    return _to_office_page(facility, order, _("Stripe has refunded it to the buyer's card."))


@office_bp.get("/orders/<int:order_id>/proofs/<int:proof_id>", endpoint="order_transfer_proof")
@login_required
def office_transfer_proof(facility_id: int, order_id: int, proof_id: int) -> Response:
    """A buyer's upload, for the facility only: never cached, never sniffed, a PDF downloaded."""
    _facility, order = _money_order(facility_id, order_id)
    proof = db.session.scalar(
        select(TransferProof)
        .where(TransferProof.id == proof_id, TransferProof.order_id == order.id)
        .options(undefer(TransferProof.data))
    )
    if proof is None:
        abort(404)
    extension = PROOF_KINDS.get(proof.content_type, ("bin", ""))[0]
    disposition = "attachment" if proof.content_type == PDF else "inline"
    response = Response(proof.data, mimetype=proof.content_type)
    response.headers["Content-Disposition"] = (
        f'{disposition}; filename="proof-{order.reference}-{proof.id}.{extension}"'
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
