"""Back office: products, price tiers, photos, programmes and the stock overview."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, url_for
from flask_login import login_required

from shop import policy
from shop.extensions import db
from shop.i18n import gettext as _

from .. import photos
from ..forms import PhotoForm, ProductForm, ProgrammeForm, megabytes, photo_refusal
from ..models import Facility, Product, ProductPhoto, Programme
from ..services import products as services
from . import bp

# The status of a form that was refused: the page comes back with its errors.
REFUSED = 422


def _product_of(facility: Facility, product_id: int) -> Product:
    return policy.owned_or_404(Product, product_id, facility.id)


def _slug_taken_message() -> str:
    return _("Another one with this name was saved at the same moment. Please save again.")


@bp.get("/products")
@login_required
def products(facility_id: int) -> str:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    rows = services.product_rows(facility.id)
    return render_template("catalog/office/products.html", facility=facility, rows=rows)


def _product_page(
    facility: Facility, form: ProductForm, product: Product | None
) -> tuple[str, int]:
    status = REFUSED if form.is_submitted() else 200
    return render_template(
        "catalog/office/product_form.html", facility=facility, form=form, product=product
    ), status


@bp.route("/products/new", methods=["GET", "POST"])
@login_required
def product_new(facility_id: int) -> tuple[str, int] | Response:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    form = ProductForm(services.programmes_of(facility.id))
    if form.validate_on_submit():
        try:
            product = services.create_product(facility, form.draft())
        except services.SlugTaken:
            form.name.errors.append(_slug_taken_message())
        else:
            flash(
                _("%(name)s is saved. Add a photo so buyers can see it.", name=product.name),
                "info",
            )
            return redirect(
                url_for(".product_photos", facility_id=facility.id, product_id=product.id)
            )
    return _product_page(facility, form, None)


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@login_required
def product_edit(facility_id: int, product_id: int) -> tuple[str, int] | Response:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    product = _product_of(facility, product_id)
    form = ProductForm(services.programmes_of(facility.id), obj=product)
    if form.validate_on_submit():
        services.update_product(product, form.draft())
        flash(_("%(name)s is saved.", name=product.name), "info")
        return redirect(url_for(".products", facility_id=facility.id))
    return _product_page(facility, form, product)


def _set_active(facility_id: int, product_id: int, active: bool) -> Response:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    product = _product_of(facility, product_id)
    services.set_active(product, active)
    if active:
        flash(_("%(name)s is back in the storefront.", name=product.name), "info")
    else:
        flash(_("%(name)s is hidden from the storefront.", name=product.name), "info")
    return redirect(url_for(".products", facility_id=facility.id))


# CSRF protection is global (CSRFProtect): a POST without the token is refused with 400.
@bp.post("/products/<int:product_id>/deactivate")
@login_required
def product_deactivate(facility_id: int, product_id: int) -> Response:
    return _set_active(facility_id, product_id, False)


@bp.post("/products/<int:product_id>/activate")
@login_required
def product_activate(facility_id: int, product_id: int) -> Response:
    return _set_active(facility_id, product_id, True)


@bp.route("/products/<int:product_id>/photos", methods=["GET", "POST"])
@login_required
def product_photos(facility_id: int, product_id: int) -> tuple[str, int] | Response:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    product = _product_of(facility, product_id)
    form = PhotoForm()
    max_bytes = int(current_app.config["MAX_PHOTO_BYTES"])
    if form.validate_on_submit():
        # One byte more than allowed is enough to know it is too large.
        raw = form.photo.data.read(max_bytes + 1)
        try:
            clean = photos.clean_photo(raw, max_bytes)
        except photos.PhotoRefused as refused:
            form.photo.errors.append(photo_refusal(refused.problem, max_bytes))
        else:
            services.add_photo(product, clean)
            flash(_("The photo is added."), "info")
            return redirect(
                url_for(".product_photos", facility_id=facility.id, product_id=product.id)
            )
    status = REFUSED if form.is_submitted() else 200
    return render_template(
        "catalog/office/product_photos.html",
        facility=facility,
        product=product,
        form=form,
        size_limit=megabytes(max_bytes),
    ), status


def _photo_of(facility: Facility, product_id: int, photo_id: int) -> ProductPhoto:
    photo = policy.owned_or_404(ProductPhoto, photo_id, facility.id, via=Product)
    if photo.product_id != product_id:
        abort(404)
    return photo


@bp.get("/products/<int:product_id>/photos/<int:photo_id>")
@login_required
def product_photo(facility_id: int, product_id: int, photo_id: int) -> Response:
    """The photo for staff, whether or not the product is active (the storefront's is not)."""
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    photo = _photo_of(facility, product_id, photo_id)
    db.session.refresh(photo, attribute_names=["data"])
    response = Response(photo.data, mimetype=photo.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.post("/products/<int:product_id>/photos/<int:photo_id>/delete")
@login_required
def product_photo_delete(facility_id: int, product_id: int, photo_id: int) -> Response:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    services.delete_photo(_photo_of(facility, product_id, photo_id), facility.id)
    flash(_("The photo is deleted."), "info")
    return redirect(url_for(".product_photos", facility_id=facility.id, product_id=product_id))


@bp.get("/programmes")
@login_required
def programmes(facility_id: int) -> str:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    rows = services.programme_rows(facility.id)
    return render_template("catalog/office/programmes.html", facility=facility, rows=rows)


def _programme_page(
    facility: Facility, form: ProgrammeForm, programme: Programme | None
) -> tuple[str, int]:
    status = REFUSED if form.is_submitted() else 200
    return render_template(
        "catalog/office/programme_form.html", facility=facility, form=form, programme=programme
    ), status


@bp.route("/programmes/new", methods=["GET", "POST"])
@login_required
def programme_new(facility_id: int) -> tuple[str, int] | Response:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    form = ProgrammeForm()
    if form.validate_on_submit():
        try:
            programme = services.create_programme(facility, form.draft())
        except services.SlugTaken:
            form.name.errors.append(_slug_taken_message())
        else:
            flash(_("%(name)s is saved.", name=programme.name), "info")
            return redirect(url_for(".programmes", facility_id=facility.id))
    return _programme_page(facility, form, None)


@bp.route("/programmes/<int:programme_id>/edit", methods=["GET", "POST"])
@login_required
def programme_edit(facility_id: int, programme_id: int) -> tuple[str, int] | Response:
    facility = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    programme = policy.owned_or_404(Programme, programme_id, facility.id)
    form = ProgrammeForm(obj=programme)
    if form.validate_on_submit():
        services.update_programme(programme, form.draft())
        flash(_("%(name)s is saved.", name=programme.name), "info")
        return redirect(url_for(".programmes", facility_id=facility.id))
    return _programme_page(facility, form, programme)


@bp.get("/stock")
@login_required
def stock(facility_id: int) -> str:
    facility = policy.facility_or_404(facility_id, policy.OFFICE_ROLES)
    lines = services.stock_lines(facility.id)
    return render_template("catalog/office/stock.html", facility=facility, lines=lines)
