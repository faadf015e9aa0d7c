"""Quotes: a buyer asks for a quantity above stock or a custom specification; staff answer.

Staff answer with a unit price, a lead time and the last day the offer holds; the buyer accepts it
into an order, declines it, or lets it expire. This module holds the quote's rules (plain functions
at the top), the services that change a quote (one transaction each, audited), the buyer's and the
staff's pages, and the `flask --app shop quotes expire` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import quote as url_quote

import click
from flask import Flask, abort, flash, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_babel import force_locale, format_date
from flask_login import current_user, login_required
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.wrappers import Response

from catalog.labels import unit_label
from catalog.models import Facility, Product
from catalog.production import facility_today
from catalog.queries import active_makers, stock_on_hand
from shop import audit, i18n, mail, params, policy
from shop.accounts.models import Role, User
from shop.database import write_transaction
from shop.extensions import db
from shop.formatting import number, rupiah
from shop.i18n import gettext as _
from shop.i18n import lazy_gettext as _l
from shop.pagination import paginate
from shop.policy import roles_required

from .cart import PricedLine, price_line
from .checkout import CheckoutRefused, CheckoutRequest, check_request, locked_batches, write_orders
from .models import DeliveryMethod, Order, PaymentMethod, Quote, QuoteStatus
from .office import bp as office_bp
from .quantities import MAX_QUANTITY
from .quote_forms import QuoteAcceptForm, QuoteAnswerForm, QuoteDeclineForm, QuoteRequestForm
from .views import bp as buyer_bp

# ---------------------------------------------------------------------------------------------
# The rules of a quote, without a database.

STATUS_LABELS = {
    QuoteStatus.REQUESTED: _l("Requested"),
    QuoteStatus.ANSWERED: _l("Answered"),
    QuoteStatus.ACCEPTED: _l("Accepted"),
    QuoteStatus.DECLINED: _l("Declined"),
    QuoteStatus.EXPIRED: _l("Expired"),
}

# Staff may correct an answer until the buyer accepts it, and renew one that expired; the buyer's
# accept form carries the answer they read, so a correction made meanwhile is never accepted blind.
ANSWERABLE = frozenset({QuoteStatus.REQUESTED, QuoteStatus.ANSWERED, QuoteStatus.EXPIRED})
DECLINABLE = frozenset({QuoteStatus.REQUESTED, QuoteStatus.ANSWERED})
DEFAULT_VALIDITY_DAYS = 14


class QuoteRefused(CheckoutRefused):
    """What the quote's state does not allow; nothing changed."""


def current_status(status: QuoteStatus, valid_until: date | None, today: date) -> QuoteStatus:
    """An answer holds through its valid-until day; after it the quote reads as expired, even
    before `flask quotes expire` has written that down."""
    if status is QuoteStatus.ANSWERED and valid_until is not None and valid_until < today:
        return QuoteStatus.EXPIRED
    return status


def answer_fingerprint(
    unit_price: int | None, lead_time_days: int | None, until: date | None
) -> str:
    """The answer as the buyer read it; accepting compares it with the answer as it stands."""
    return f"{unit_price}/{lead_time_days}/{until.isoformat() if until else ''}"


def quoted_line(quote: Quote, on_hand: int) -> PricedLine:
    """The quote as an order line: its own price, its own lead time, no quantity rule to break.

    The product's order multiple and minimum do not apply: staff agreed to this quantity.
    """
    assert quote.unit_price is not None, "only an answered quote becomes an order line"
    return PricedLine(
        product=quote.product,
        quantity=quote.quantity,
        unit_price=quote.unit_price,
        tier_min_quantity=None,
        on_hand=on_hand,
        problem=None,
        nearest=quote.quantity,
        made_to_order=max(0, quote.quantity - on_hand),
        made_to_order_days=quote.lead_time_days,
    )


def whatsapp_link(phone: str, text: str) -> str:
    """A wa.me link that opens a chat with `phone` (Indonesian 08… becomes 628…), or lets the
    sender pick the chat when there is no number."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return f"https://wa.me/{digits}?text={url_quote(text)}"


# ---------------------------------------------------------------------------------------------
# Services: each loads and locks the quote, applies the rules, records the change, commits once.


def status_of(quote: Quote) -> QuoteStatus:
    """The quote's status on today's date where its facility is."""
    return current_status(quote.status, quote.valid_until, facility_today(quote.facility.timezone))


def _refusal(status: QuoteStatus) -> QuoteRefused:
    messages = {
        QuoteStatus.REQUESTED: _("The facility has not answered this quote yet."),
        QuoteStatus.ANSWERED: _("This quote is answered already."),
        QuoteStatus.ACCEPTED: _("This quote is accepted: it has become an order."),
        QuoteStatus.DECLINED: _("This quote was declined."),
        QuoteStatus.EXPIRED: _("This quote has expired; ask the facility for a new one."),
    }
    return QuoteRefused([messages[status]])


def _locked_quote(*where: ColumnElement[bool]) -> Quote:
    quote = db.session.scalar(select(Quote).where(*where).with_for_update())
    if quote is None:
        raise QuoteRefused([_("That quote does not exist.")])
    return quote


def request_quote(buyer: User, product: Product, quantity: int, specification: str) -> Quote:
    quote = Quote(
        buyer_id=buyer.id,
        facility_id=product.facility_id,
        product_id=product.id,
        quantity=quantity,
        specification=specification.strip(),
        status=QuoteStatus.REQUESTED,
    )
    db.session.add(quote)
    audit.record("request", quote, facility_id=product.facility_id)
    db.session.commit()
    return quote


@dataclass(frozen=True)
class Answer:
    unit_price: int
    lead_time_days: int
    valid_until: date
    staff_note: str = ""


def answer_quote(quote_id: int, facility_id: int, answer: Answer, link: str) -> Quote:
    """Staff answer (or correct, or renew) a quote; the buyer is mailed `link` to read it."""
    with write_transaction():
        quote = _locked_quote(Quote.id == quote_id, Quote.facility_id == facility_id)
        if quote.status not in ANSWERABLE:
            raise _refusal(quote.status)
        before = audit.snapshot(quote)
        quote.unit_price = answer.unit_price
        quote.lead_time_days = answer.lead_time_days
        quote.valid_until = answer.valid_until
        quote.staff_note = answer.staff_note.strip()
        quote.status = QuoteStatus.ANSWERED
        audit.record("answer", quote, facility_id=quote.facility_id, before=before)
        mail.queue(quote.buyer.email, *_answer_mail(quote, link))
    return quote


def _answer_mail(quote: Quote, link: str) -> tuple[str, str]:
    """In the site's language, not the staff member's: the buyer's own is not known."""
    assert quote.unit_price is not None and quote.valid_until is not None
    with force_locale(i18n.DEFAULT):
        subject = _("Your quote for %(product)s is answered", product=quote.product.name)
        body = _(
            "%(facility)s offers %(quantity)s %(unit)s of %(product)s at %(price)s each, "
            "%(total)s in all. What is not in stock is made in about %(days)s working days. "
            "The offer holds until %(date)s.",
            facility=quote.facility.name,
            quantity=number(quote.quantity),
            unit=unit_label(quote.product.unit),
            product=quote.product.name,
            price=rupiah(quote.unit_price),
            total=rupiah(quote.unit_price * quote.quantity),
            days=quote.lead_time_days,
            date=format_date(quote.valid_until, "long"),
        )
        if quote.staff_note:
            body += "\n\n" + _("Note from the facility: %(note)s", note=quote.staff_note)
        body += "\n\n" + _("Read it and accept it here: %(link)s", link=link)
    return subject, body


@dataclass(frozen=True)
class Acceptance:
    delivery_method: DeliveryMethod
    delivery_address: str
    payment_method: PaymentMethod
    note: str
    answer_seen: str  # `answer_fingerprint` of the answer on the buyer's page


def accept_quote(quote_id: int, buyer: User, acceptance: Acceptance) -> Order:
    """Turns an answered quote into one order at the quoted price, as a checkout does: the stock on
    hand is allocated oldest batch first under the batches' row locks, the rest is made to order
    in the quoted lead time. Accepting an accepted quote returns its order and writes nothing."""
    with write_transaction():
        quote = _locked_quote(Quote.id == quote_id, Quote.buyer_id == buyer.id)
        if quote.status is QuoteStatus.ACCEPTED and quote.order_id is not None:
            return db.session.get_one(Order, quote.order_id)
        status = status_of(quote)
        if status is not QuoteStatus.ANSWERED:
            raise _refusal(status)
        seen = answer_fingerprint(quote.unit_price, quote.lead_time_days, quote.valid_until)
        if acceptance.answer_seen != seen:
            raise QuoteRefused(
                [_("The facility has changed its answer since you opened it: read it again.")]
            )
        if not quote.product.active:
            raise QuoteRefused([_("%(product)s is no longer on sale.", product=quote.product.name)])
        checkout = CheckoutRequest(
            items={quote.product_id: quote.quantity},
            delivery_method=acceptance.delivery_method,
            delivery_address=acceptance.delivery_address,
            payment_method=acceptance.payment_method,
            # One key per quote: the order's unique (checkout_key, facility) is a second guard
            # against a second order, behind the quote's row lock.
            checkout_key=f"quote-{quote.id}",
            accept_made_to_order=True,
            note=acceptance.note,
        )
        check_request(checkout)
        batches = locked_batches([quote.product_id])[quote.product_id]
        line = quoted_line(quote, sum(b.on_hand for b in batches))
        [order] = write_orders(buyer.id, buyer.email, checkout, [(line, batches)])
        before = audit.snapshot(quote)
        quote.status = QuoteStatus.ACCEPTED
        quote.order_id = order.id
        audit.record("accept", quote, facility_id=quote.facility_id, before=before)
    return order


def decline_quote(quote_id: int, buyer: User) -> Quote:
    with write_transaction():
        quote = _locked_quote(Quote.id == quote_id, Quote.buyer_id == buyer.id)
        status = status_of(quote)
        if status not in DECLINABLE:
            raise _refusal(status)
        before = audit.snapshot(quote)
        quote.status = QuoteStatus.DECLINED
        audit.record("decline", quote, facility_id=quote.facility_id, before=before)
    return quote


def expire_quotes(now: datetime | None = None) -> int:
    """Writes down as expired every answered quote past its valid-until day where its facility
    is. Running it again finds nothing more to do. Returns how many quotes expired."""
    expired = 0
    with write_transaction():
        zones = db.session.scalars(select(Facility.timezone).distinct()).all()
        for zone in sorted(zones):
            due = db.session.scalars(
                select(Quote)
                .join(Quote.facility)
                .where(
                    Facility.timezone == zone,
                    Quote.status == QuoteStatus.ANSWERED,
                    Quote.valid_until < facility_today(zone, now),
                )
                .order_by(Quote.id)
                .with_for_update(of=Quote)
            ).all()
            for quote in due:
                before = audit.snapshot(quote)
                quote.status = QuoteStatus.EXPIRED
                audit.record("expire", quote, facility_id=quote.facility_id, before=before)
            expired += len(due)
    return expired


def status_condition(status: QuoteStatus, today: date) -> ColumnElement[bool]:
    """`current_status` as SQL, for one facility's `today`."""
    if status is QuoteStatus.ANSWERED:
        return and_(Quote.status == QuoteStatus.ANSWERED, Quote.valid_until >= today)
    if status is QuoteStatus.EXPIRED:
        return or_(
            Quote.status == QuoteStatus.EXPIRED,
            and_(Quote.status == QuoteStatus.ANSWERED, Quote.valid_until < today),
        )
    return Quote.status == status


# ---------------------------------------------------------------------------------------------
# Labels the templates use.


@buyer_bp.app_template_global("quote_label")
def quote_label(status: QuoteStatus) -> str:
    return str(STATUS_LABELS[QuoteStatus(status)])


@buyer_bp.app_template_global("quote_status")
def quote_status(quote: Quote) -> QuoteStatus:
    return status_of(quote)


# ---------------------------------------------------------------------------------------------
# The buyer's pages.

REFUSED = 422


def _active_product_or_404() -> Product:
    slug = params.text(request.args, "product", 120)
    product = db.session.scalar(
        select(Product)
        .options(joinedload(Product.facility), selectinload(Product.tiers))
        .where(Product.slug == slug, Product.active.is_(True))
    )
    if product is None:
        abort(404)
    return product


@buyer_bp.route("/quotes/new", methods=["GET", "POST"])
@roles_required(Role.BUYER)
def quote_new() -> str | Response | tuple[str, int]:
    product = _active_product_or_404()
    form = QuoteRequestForm()
    if request.method == "GET":
        wanted = request.args.get("quantity", "").strip()
        if wanted.isdecimal() and 1 <= int(wanted) <= MAX_QUANTITY:
            form.quantity.data = int(wanted)
        return render_template("orders/quote_new.html", form=form, product=product)
    if not form.validate():
        return render_template("orders/quote_new.html", form=form, product=product), REFUSED
    quote = request_quote(current_user, product, form.quantity.data, form.specification.data or "")
    flash(
        _(
            "Your request is sent to %(facility)s. We will email you when they answer.",
            facility=product.facility.name,
        ),
        "info",
    )
    return redirect(url_for("orders.quote_detail", quote_id=quote.id))


@buyer_bp.get("/quotes")
@roles_required(Role.BUYER)
def my_quotes() -> str:
    page = paginate(
        select(Quote)
        .options(joinedload(Quote.product), joinedload(Quote.facility))
        .where(Quote.buyer_id == current_user.id)
        .order_by(Quote.id.desc()),
        params.page_number(request.args),
        20,
    )
    return render_template("orders/quotes.html", page=page)


def _buyer_quote_or_404(quote_id: int) -> Quote:
    """The quote if it is the signed-in buyer's own; another buyer's id is a 404."""
    quote = db.session.scalar(
        select(Quote).where(Quote.id == quote_id, Quote.buyer_id == current_user.id)
    )
    if quote is None:
        abort(404)
    return quote


def _quote_page(
    quote: Quote, accept_form: QuoteAcceptForm | None = None, status_code: int = 200
) -> tuple[str, int]:
    if accept_form is None:
        accept_form = QuoteAcceptForm()
        if current_user.buyer_profile:
            accept_form.delivery_address.data = current_user.buyer_profile.address
    # Always the answer as it stands now, also when a refused form comes back.
    accept_form.answer_seen.data = answer_fingerprint(
        quote.unit_price, quote.lead_time_days, quote.valid_until
    )
    link = url_for("orders.quote_detail", quote_id=quote.id, _external=True)
    return render_template(
        "orders/quote.html",
        quote=quote,
        status=status_of(quote),
        on_hand=stock_on_hand(quote.product_id),
        order=db.session.get(Order, quote.order_id) if quote.order_id else None,
        accept_form=accept_form,
        share_link=whatsapp_link(
            "", _("Quote for %(product)s: %(link)s", product=quote.product.name, link=link)
        ),
    ), status_code


@buyer_bp.get("/quotes/<int:quote_id>")
@login_required
def quote_detail(quote_id: int) -> tuple[str, int] | Response:
    """The link buyers share: its buyer reads it here, the facility's staff in the back office,
    anyone else gets a 404."""
    quote = db.session.get(Quote, quote_id)
    if quote is None:
        abort(404)
    if quote.buyer_id != current_user.id:
        if policy.may(current_user, policy.STAFF_ROLES, quote.facility_id):
            return redirect(
                url_for(
                    "orders_office.quote_answer", facility_id=quote.facility_id, quote_id=quote.id
                )
            )
        abort(404)
    return _quote_page(quote)


@buyer_bp.post("/quotes/<int:quote_id>/accept")
@roles_required(Role.BUYER)
def quote_accept(quote_id: int) -> Response | tuple[str, int]:
    quote = _buyer_quote_or_404(quote_id)
    if quote.status is QuoteStatus.ACCEPTED and quote.order_id is not None:
        order = db.session.get_one(Order, quote.order_id)
        flash(_("You accepted this quote already: here is its order."), "info")
        return redirect(url_for("orders.order_detail", reference=order.reference))
    form = QuoteAcceptForm()
    if not form.validate():
        return _quote_page(quote, form, REFUSED)
    try:
        order = accept_quote(
            quote.id,
            current_user,
            Acceptance(
                delivery_method=DeliveryMethod(form.delivery_method.data),
                delivery_address=form.delivery_address.data or "",
                payment_method=PaymentMethod(form.payment_method.data),
                note=form.note.data or "",
                answer_seen=form.answer_seen.data or "",
            ),
        )
    except CheckoutRefused as refused:
        for message in refused.messages:
            flash(message, "error")
        status_code = 409 if isinstance(refused, QuoteRefused) else REFUSED
        return _quote_page(quote, form, status_code)
    flash(
        _("Quote accepted: your order %(reference)s is placed.", reference=order.reference), "info"
    )
    return redirect(url_for("orders.order_detail", reference=order.reference))


@buyer_bp.post("/quotes/<int:quote_id>/decline")
@roles_required(Role.BUYER)
def quote_decline(quote_id: int) -> Response | tuple[str, int]:
    quote = _buyer_quote_or_404(quote_id)
    if not QuoteDeclineForm().validate():
        abort(400)
    try:
        decline_quote(quote.id, current_user)
    except QuoteRefused as refused:
        for message in refused.messages:
            flash(message, "error")
        return _quote_page(quote, status_code=409)
    flash(_("You declined the quote."), "info")
    return redirect(url_for("orders.quote_detail", quote_id=quote_id))


# ---------------------------------------------------------------------------------------------
# The facility's pages.


@office_bp.get("/quotes", endpoint="quotes")
@login_required
def office_quotes(facility_id: int) -> str:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    wanted = params.choice(request.args, "status", QuoteStatus)
    stmt = (
        select(Quote)
        .options(
            joinedload(Quote.product),
            joinedload(Quote.facility),
            joinedload(Quote.buyer).joinedload(User.buyer_profile),
        )
        .where(Quote.facility_id == facility.id)
        .order_by(Quote.id.desc())
    )
    if wanted is not None:
        stmt = stmt.where(status_condition(wanted, facility_today(facility.timezone)))
    page = paginate(stmt, params.page_number(request.args))
    return render_template(
        "orders/office/quotes.html",
        facility=facility,
        page=page,
        wanted=wanted,
        statuses=list(QuoteStatus),
    )


def _answer_shown(quote: Quote, catalog_line: PricedLine, today: date) -> Answer:
    """The answer given, or what the catalog would charge and promise for this quantity: a
    starting point for staff."""
    if quote.unit_price is not None and quote.lead_time_days and quote.valid_until:
        return Answer(quote.unit_price, quote.lead_time_days, quote.valid_until, quote.staff_note)
    return Answer(
        unit_price=catalog_line.unit_price,
        lead_time_days=catalog_line.made_to_order_days or 1,
        valid_until=today + timedelta(days=DEFAULT_VALIDITY_DAYS),
    )


def _answer_page(
    facility: Facility, quote: Quote, catalog_line: PricedLine, form: QuoteAnswerForm
) -> str:
    buyer_link = url_for("orders.quote_detail", quote_id=quote.id, _external=True)
    profile = quote.buyer.buyer_profile
    phone = profile.phone if profile and profile.phone else quote.buyer.phone
    return render_template(
        "orders/office/quote_answer.html",
        facility=facility,
        quote=quote,
        status=current_status(quote.status, quote.valid_until, form.today),
        catalog_line=catalog_line,
        form=form,
        answerable=quote.status in ANSWERABLE,
        phone=phone,
        buyer_link=buyer_link,
        whatsapp=whatsapp_link(
            phone,
            _("Your quote for %(product)s: %(link)s", product=quote.product.name, link=buyer_link),
        ),
    )


@office_bp.route("/quotes/<int:quote_id>", methods=["GET", "POST"])
@login_required
def quote_answer(facility_id: int, quote_id: int) -> str | Response | tuple[str, int]:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    quote: Quote = policy.owned_or_404(Quote, quote_id, facility.id)
    today = facility_today(facility.timezone)
    product = quote.product
    catalog_line = price_line(
        product, quote.quantity, stock_on_hand(product.id), active_makers(product.programme_id)
    )
    if request.method == "GET":
        form = QuoteAnswerForm(today, obj=_answer_shown(quote, catalog_line, today))
        return _answer_page(facility, quote, catalog_line, form)
    form = QuoteAnswerForm(today)
    if not form.validate():
        return _answer_page(facility, quote, catalog_line, form), REFUSED
    answer = Answer(
        unit_price=form.unit_price.data,
        lead_time_days=form.lead_time_days.data,
        valid_until=form.valid_until.data,
        staff_note=form.staff_note.data or "",
    )
    link = url_for("orders.quote_detail", quote_id=quote.id, _external=True)
    try:
        answer_quote(quote.id, facility.id, answer, link)
    except QuoteRefused as refused:
        for message in refused.messages:
            flash(message, "error")
        return _answer_page(facility, quote, catalog_line, form), 409
    flash(_("The answer is sent to the buyer."), "info")
    return redirect(url_for("orders_office.quotes", facility_id=facility.id))


# ---------------------------------------------------------------------------------------------
# The command line.


def register_cli(app: Flask) -> None:
    """Adds `flask --app shop quotes expire`; run it daily (a quote reads as expired anyway)."""
    group = AppGroup("quotes", help="Quotes that buyers asked for and facilities answered.")

    @group.command("expire")
    def expire() -> None:
        """Mark answered quotes past their valid-until day (in each facility's time zone)."""
        click.echo(f"Quotes expired: {expire_quotes()}")

    app.cli.add_command(group)
