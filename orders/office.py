"""Facility back office for orders: the facility's orders, their fulfilment, and quotes.

Staff, finance and admin of the facility see its orders; only staff (and admin) act on them, and
anything of another facility answers 404. Every action goes through `orders.fulfilment`, which
locks the order, checks the life cycle and writes the audit entry. A refused action re-renders the
order with the reasons and status 422 (a form error) or 409 (the order's state does not allow
it), having changed nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import Select, func, select
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from catalog.models import Facility
from shop import params, policy
from shop.accounts.models import User
from shop.extensions import db
from shop.formatting import rupiah
from shop.i18n import gettext as _
from shop.i18n import lazy_gettext as _l
from shop.pagination import paginate

from .forms import CancelForm
from .fulfilment import (
    FulfilmentRefused,
    cancel_line,
    cancel_order,
    change_status,
    record_shipment,
    set_delivery_fee,
)
from .labels import STATUS_LABELS
from .lifecycle import OrderStatus
from .models import DeliveryMethod, LineAllocation, Order, OrderEvent, OrderLine, Shipment
from .office_forms import (
    CancelLineForm,
    DeliveryFeeForm,
    ShipmentForm,
    StatusForm,
    available_actions,
    shipment_form,
)

bp = Blueprint("orders_office", __name__, url_prefix="/office/<int:facility_id>")

Page = tuple[str, int]
INVALID = 422
REFUSED = 409
ORDERS_PER_PAGE = 50
MAX_REFERENCE_SEARCH = 32

# Order documents, linked when their routes are registered.
DOCUMENTS = (
    ("orders_office.invoice_pdf", _l("Invoice (PDF)")),
    ("orders_office.delivery_note_pdf", _l("Delivery note (PDF)")),
)


@dataclass(frozen=True)
class BuyerContact:
    business_name: str
    contact_person: str
    phone: str
    whatsapp_url: str | None
    email: str
    address: str


def whatsapp_url(phone: str) -> str | None:
    """A wa.me link for an Indonesian number written as 0812…, +62 812… or 62812…."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    if not digits.startswith("62") or not 10 <= len(digits) <= 15:
        return None
    return f"https://wa.me/{digits}"


def buyer_contact(buyer: User) -> BuyerContact:
    """Who to call about the order: the buyer's business, phone (WhatsApp) first."""
    profile = buyer.buyer_profile
    phone = profile.phone if profile else buyer.phone
    return BuyerContact(
        business_name=profile.business_name if profile else buyer.name,
        contact_person=profile.contact_person if profile else buyer.name,
        phone=phone,
        whatsapp_url=whatsapp_url(phone),
        email=buyer.email,
        address=profile.address if profile else "",
    )


# The list of orders


def _orders_query(facility_id: int, status: OrderStatus | None, reference: str) -> Select[Any]:
    stmt = (
        select(Order)
        .where(Order.facility_id == facility_id)
        .options(
            joinedload(Order.buyer).joinedload(User.buyer_profile),
            selectinload(Order.lines),  # what is still to hand over
        )
    )
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if reference:
        stmt = stmt.where(func.upper(Order.reference).contains(reference.upper(), autoescape=True))
    return stmt.order_by(Order.placed_at.desc(), Order.id.desc())


@bp.get("/orders")
@login_required
def orders(facility_id: int) -> str:
    facility = policy.facility_or_404(facility_id, policy.OFFICE_ROLES)
    status = params.choice(request.args, "status", OrderStatus)
    reference = params.text(request.args, "q", MAX_REFERENCE_SEARCH)
    page = paginate(
        _orders_query(facility.id, status, reference),
        params.page_number(request.args),
        ORDERS_PER_PAGE,
    )
    return render_template(
        "orders/office/orders.html",
        facility=facility,
        page=page,
        status=status,
        q=reference,
        status_labels=STATUS_LABELS,
    )


# One order


def _with_everything_shown(order_id: int) -> Order:
    """The order with all its page shows, in a fixed number of queries."""
    return db.session.scalars(
        select(Order)
        .where(Order.id == order_id)
        .options(
            joinedload(Order.buyer).joinedload(User.buyer_profile),
            joinedload(Order.invoice),
            selectinload(Order.lines).options(
                joinedload(OrderLine.product),
                selectinload(OrderLine.allocations).joinedload(LineAllocation.batch),
            ),
            selectinload(Order.events).joinedload(OrderEvent.user),
            selectinload(Order.shipments).selectinload(Shipment.lines),
        )
        .execution_options(populate_existing=True)
    ).one()


def _order_page(
    facility: Facility,
    order: Order,
    status: int = 200,
    *,
    status_form: StatusForm | None = None,
    fee_form: DeliveryFeeForm | None = None,
    shipment: ShipmentForm | None = None,
    cancel: CancelForm | None = None,
    cancel_one: CancelLineForm | None = None,
) -> Page:
    """The order's page; the form that was posted (if any) keeps what was typed and its errors."""
    order = _with_everything_shown(order.id)
    actions = (
        available_actions(order)
        if policy.may(current_user, policy.STAFF_ROLES, facility.id)
        else None
    )
    if status_form is None:
        status_form = StatusForm(formdata=None)
    if fee_form is None:
        fee_form = DeliveryFeeForm(formdata=None, delivery_fee=order.delivery_fee)
    if shipment is None:
        picked_up = order.delivery_method is DeliveryMethod.PICKUP
        shipment = shipment_form(order.lines, picked_up, posted=False)
    if cancel is None:
        cancel = CancelForm(formdata=None)
    if cancel_one is None:
        cancel_one = CancelLineForm(formdata=None)
    if actions is not None:
        cancel_one.line_id.choices = [
            SelectChoice(line.id, line.product.name) for line in actions.cancellable_lines
        ]
    return render_template(
        "orders/office/order.html",
        facility=facility,
        order=order,
        contact=buyer_contact(order.buyer),
        actions=actions,
        status_form=status_form,
        fee_form=fee_form,
        shipment=shipment,
        cancel=cancel,
        cancel_one=cancel_one,
        documents=[
            (endpoint, label)
            for endpoint, label in DOCUMENTS
            if endpoint in current_app.view_functions
        ],
    ), status


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(facility_id: int, order_id: int) -> Page:
    facility = policy.facility_or_404(facility_id, policy.OFFICE_ROLES)
    order = policy.owned_or_404(Order, order_id, facility.id)
    return _order_page(facility, order)


# Actions: staff of the facility only


def _staff_order(facility_id: int, order_id: int) -> tuple[Facility, Order]:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    return facility, policy.owned_or_404(Order, order_id, facility.id)


def _refused(facility: Facility, order: Order, messages: list[str], **forms: Any) -> Page:
    for message in messages:
        flash(message, "error")
    return _order_page(facility, order, REFUSED, **forms)


def _done(facility: Facility, order: Order, message: str) -> Response:
    flash(message, "info")
    return redirect(url_for(".order_detail", facility_id=facility.id, order_id=order.id))


@bp.post("/orders/<int:order_id>/status")
@login_required
def order_status(facility_id: int, order_id: int) -> Page | Response:
    facility, order = _staff_order(facility_id, order_id)
    form = StatusForm()
    if not form.validate():
        return _order_page(facility, order, INVALID, status_form=form)
    target = OrderStatus(form.status.data)
    try:
        change_status(order.id, target, current_user)
    except FulfilmentRefused as refused:
        return _refused(facility, order, refused.messages, status_form=form)
    return _done(
        facility,
        order,
        _(
            "Order %(reference)s is now: %(status)s.",
            reference=order.reference,
            status=STATUS_LABELS[target],
        ),
    )


@bp.post("/orders/<int:order_id>/delivery-fee")
@login_required
def order_delivery_fee(facility_id: int, order_id: int) -> Page | Response:
    facility, order = _staff_order(facility_id, order_id)
    form = DeliveryFeeForm()
    if not form.validate():
        return _order_page(facility, order, INVALID, fee_form=form)
    try:
        set_delivery_fee(order.id, form.delivery_fee.data, current_user)
    except FulfilmentRefused as refused:
        return _refused(facility, order, refused.messages, fee_form=form)
    return _done(
        facility,
        order,
        _(
            "The delivery fee of order %(reference)s is %(fee)s.",
            reference=order.reference,
            fee=rupiah(form.delivery_fee.data),
        ),
    )


@bp.post("/orders/<int:order_id>/shipments")
@login_required
def order_shipment(facility_id: int, order_id: int) -> Page | Response:
    facility, order = _staff_order(facility_id, order_id)
    form = shipment_form(order.lines, order.delivery_method is DeliveryMethod.PICKUP)
    if not form.validate():
        return _order_page(facility, order, INVALID, shipment=form)
    try:
        record_shipment(
            order.id, form.quantities, form.picked_up, current_user, form.shipment_note.data or ""
        )
    except FulfilmentRefused as refused:
        return _refused(facility, order, refused.messages, shipment=form)
    return _done(
        facility,
        order,
        _("The handover for order %(reference)s is recorded.", reference=order.reference),
    )


@bp.post("/orders/<int:order_id>/cancel")
@login_required
def order_cancel(facility_id: int, order_id: int) -> Page | Response:
    facility, order = _staff_order(facility_id, order_id)
    form = CancelForm()
    if not form.validate():
        return _order_page(facility, order, INVALID, cancel=form)
    try:
        cancel_order(order.id, form.reason.data or "", current_user)
    except FulfilmentRefused as refused:
        return _refused(facility, order, refused.messages, cancel=form)
    return _done(facility, order, _("Order %(reference)s is cancelled.", reference=order.reference))


@bp.post("/orders/<int:order_id>/cancel-line")
@login_required
def order_cancel_line(facility_id: int, order_id: int) -> Page | Response:
    facility, order = _staff_order(facility_id, order_id)
    form = CancelLineForm()
    valid = form.validate()
    line = next((x for x in order.lines if x.id == form.line_id.data), None)
    if form.line_id.data is not None and line is None:
        abort(404)  # a line of another order
    if not valid or line is None:
        return _order_page(facility, order, INVALID, cancel_one=form)
    try:
        cancel_line(order.id, line.id, form.line_reason.data or "", current_user)
    except FulfilmentRefused as refused:
        return _refused(facility, order, refused.messages, cancel_one=form)
    return _done(
        facility,
        order,
        _(
            "%(product)s is cancelled from order %(reference)s.",
            product=line.product.name,
            reference=order.reference,
        ),
    )
