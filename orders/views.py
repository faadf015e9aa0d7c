"""Buyer pages: the cart, checkout and the buyer's own orders."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from shop import params
from shop.accounts.models import Role
from shop.extensions import db
from shop.i18n import gettext as _
from shop.pagination import paginate
from shop.policy import roles_required

from . import cart as carts
from .checkout import CheckoutRefused, CheckoutRequest, OutOfStock, place_orders
from .forms import QUANTITY_MESSAGE, CancelForm, CartLineForm, CheckoutForm, RemoveLineForm
from .fulfilment import FulfilmentRefused, cancel_order
from .lifecycle import OrderStatus
from .models import DeliveryMethod, Order, PaymentMethod

bp = Blueprint("orders", __name__)


@bp.get("/cart")
def cart() -> str:
    groups = carts.price_cart(carts.current_cart().items())
    return render_template("orders/cart.html", groups=groups)


@bp.post("/cart")
def cart_put() -> Response:
    """Adds a product or changes its quantity; the cart explains any rule the quantity breaks."""
    form = CartLineForm()
    if not form.validate():
        abort(400, description=str(QUANTITY_MESSAGE))
    cart = carts.current_cart()
    items = cart.items()
    if form.product_id.data not in items and len(items) >= carts.MAX_LINES:
        abort(400, description=_("A cart can hold at most %(n)s products.", n=carts.MAX_LINES))
    if not carts.on_sale(form.product_id.data):
        abort(404)
    cart.put(form.product_id.data, form.quantity.data)
    flash(_("Your cart is updated."), "info")
    return redirect(url_for("orders.cart"))


@bp.post("/cart/remove")
def cart_remove() -> Response:
    form = RemoveLineForm()
    if not form.validate():
        abort(400, description=_("That product is not in your cart."))
    carts.current_cart().remove(form.product_id.data)
    return redirect(url_for("orders.cart"))


@bp.route("/checkout", methods=["GET", "POST"])
@roles_required(Role.BUYER)
def checkout() -> str | Response | tuple[str, int]:
    cart = carts.current_cart()
    items = cart.items()
    form = CheckoutForm()
    if request.method == "GET":
        groups = carts.price_cart(items)
        if not groups:
            return _cart_is_empty()
        form.checkout_key.data = uuid.uuid4().hex
        if current_user.buyer_profile:
            form.delivery_address.data = current_user.buyer_profile.address
        return render_template("orders/checkout.html", form=form, groups=groups)
    # Placing the orders prices the cart itself, under the locks: the cart is priced here only
    # when the page is shown again.
    if not items:
        return _cart_is_empty()
    if not form.validate():
        return _checkout_again(form, items, 422)
    key = form.checkout_key.data or ""
    try:
        place_orders(
            current_user,
            CheckoutRequest(
                items=items,
                delivery_method=DeliveryMethod(form.delivery_method.data),
                delivery_address=form.delivery_address.data or "",
                payment_method=PaymentMethod(form.payment_method.data),
                checkout_key=key,
                accept_made_to_order=bool(form.accept_made_to_order.data),
                note=form.note.data or "",
            ),
        )
    except CheckoutRefused as refused:
        status = 409 if isinstance(refused, OutOfStock) else 422
        return _checkout_again(form, items, status, refused.messages)
    except IntegrityError:
        # The same form sent twice at once: the other request placed the orders first.
        placed_first = db.session.scalar(
            select(Order.id).where(Order.buyer_id == current_user.id, Order.checkout_key == key)
        )
        if placed_first is None:
            raise
        return redirect(url_for("orders.placed", key=key))
    cart.clear()
    return redirect(url_for("orders.placed", key=key))


def _cart_is_empty() -> Response:
    flash(_("Your cart is empty."), "info")
    return redirect(url_for("orders.cart"))


def _checkout_again(
    form: CheckoutForm, items: dict[int, int], status: int, messages: list[str] | None = None
) -> Response | tuple[str, int]:
    """The checkout page again, with why the orders were not placed; a cart whose products are
    all off sale meanwhile is empty."""
    groups = carts.price_cart(items)
    if not groups:
        return _cart_is_empty()
    for message in messages or []:
        flash(message, "error")
    return render_template("orders/checkout.html", form=form, groups=groups), status


@bp.get("/orders/placed/<key>")
@roles_required(Role.BUYER)
def placed(key: str) -> str:
    orders = db.session.scalars(
        select(Order)
        .options(joinedload(Order.facility))
        .where(Order.buyer_id == current_user.id, Order.checkout_key == key)
        .order_by(Order.id)
    ).all()
    if not orders:
        abort(404)
    return render_template("orders/placed.html", orders=orders)


@bp.get("/orders")
@roles_required(Role.BUYER)
def my_orders() -> str:
    page = paginate(
        select(Order).where(Order.buyer_id == current_user.id).order_by(Order.id.desc()),
        params.page_number(request.args),
        20,
    )
    return render_template("orders/my_orders.html", page=page)


def buyer_order_or_404(reference: str) -> Order:
    """The order if it is the signed-in buyer's own; another buyer's reference is a 404."""
    order = db.session.scalar(
        select(Order).where(Order.reference == reference, Order.buyer_id == current_user.id)
    )
    if order is None:
        abort(404)
    return order


@bp.get("/orders/<reference>")
@roles_required(Role.BUYER)
def order_detail(reference: str) -> str:
    order = buyer_order_or_404(reference)
    return render_template("orders/order.html", order=order, cancel_form=CancelForm())


@bp.post("/orders/<reference>/cancel")
@roles_required(Role.BUYER)
def order_cancel(reference: str) -> Response | tuple[str, int]:
    order = buyer_order_or_404(reference)
    form = CancelForm()
    if order.status is not OrderStatus.PLACED:
        flash(_("The facility has confirmed this order; ask them to cancel it."), "error")
        return redirect(url_for("orders.order_detail", reference=reference))
    if not form.validate():
        return render_template("orders/order.html", order=order, cancel_form=form), 422
    try:
        cancel_order(order.id, form.reason.data or "", current_user)
    except FulfilmentRefused as refused:
        for message in refused.messages:
            flash(message, "error")
    else:
        flash(_("Order %(reference)s is cancelled.", reference=reference), "info")
    return redirect(url_for("orders.order_detail", reference=reference))
