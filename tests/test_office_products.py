"""Facility staff keep their products, price tiers, photos and programmes; everyone sees the stock.

The story: the giatja staff of Rutan Banjarnegara put a larger besek on sale with kodi pricing,
correct it, photograph it and take it off sale again; Magetan's staff and finance users cannot
touch it.
"""

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from catalog.models import (
    Batch,
    BatchStatus,
    PriceTier,
    Product,
    ProductPhoto,
    Programme,
)
from shop.audit import AuditEntry
from shop.extensions import db

from .helpers import login, post_form, visible_text

BESEK_BESAR = {
    "name": "Besek bambu besar",
    "description": "Besek ukuran 20 x 20 cm untuk ikan asin dan kue basah.",
    "category": "crafts",
    "unit": "pcs",
    "base_price": "150",
    "min_order_qty": "100",
    "order_multiple": "20",
    "tiers-0-min_quantity": "5000",
    "tiers-0-unit_price": "140",
    "tiers-1-min_quantity": "",
    "tiers-1-unit_price": "",
    "tiers-2-min_quantity": "10000",
    "tiers-2-unit_price": "130",
    "tiers-3-min_quantity": "",
    "tiers-3-unit_price": "",
    "tiers-4-min_quantity": "",
    "tiers-4-unit_price": "",
    "active": "y",
}


@pytest.fixture
def banjarnegara(users, facilities):
    """The facility id, its besek programme and its demo besek, and a staff member signed in."""
    besek = db.session.scalar(select(Product).where(Product.slug == "besek-bambu-banjarnegara"))
    return {
        "facility_id": facilities["banjarnegara"],
        "office": f"/office/{facilities['banjarnegara']}",
        "programme_id": besek.programme_id,
        "besek_id": besek.id,
        "staff": users["staff_banjarnegara"],
    }


@pytest.fixture
def staff(client, banjarnegara):
    client.set_cookie("lang", "en")
    login(client, "staff.banjarnegara@example.id")
    return client


def new_product(client, office, programme_id, **changes):
    data = dict(BESEK_BESAR, programme_id=str(programme_id), **changes)
    return post_form(client, f"{office}/products/new", data)


def created(name="Besek bambu besar"):
    db.session.rollback()
    return db.session.scalar(select(Product).where(Product.name == name))


def audit_entries(entity, entity_id):
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id)
        )
    )


def count(model):
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def photo_file(fmt="PNG", size=(640, 480), **save_options):
    buffer = io.BytesIO()
    Image.new("RGB", size, (196, 154, 92)).save(buffer, format=fmt, **save_options)
    return buffer.getvalue()


def upload(client, office, product_id, content, filename):
    url = f"{office}/products/{product_id}/photos"
    return post_form(
        client,
        url,
        {"photo": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


# Products


def test_staff_create_a_product_with_kodi_price_tiers(staff, banjarnegara):
    office = banjarnegara["office"]
    assert staff.get(f"{office}/products/new").status_code == 200

    response = new_product(staff, office, banjarnegara["programme_id"])

    assert response.status_code == 302
    product = created()
    assert response.headers["Location"].endswith(f"{office}/products/{product.id}/photos")
    assert product.slug == "besek-bambu-besar-banjarnegara"
    assert product.facility_id == banjarnegara["facility_id"]
    assert (product.base_price, product.min_order_qty, product.order_multiple) == (150, 100, 20)
    assert [(t.min_quantity, t.unit_price) for t in product.tiers] == [(5000, 140), (10000, 130)]
    [entry] = audit_entries("product", product.id)
    assert entry.action == "create"
    assert entry.user_id == banjarnegara["staff"].id
    assert entry.facility_id == banjarnegara["facility_id"]
    assert entry.changes["tiers"] == [[], [[5000, 140], [10000, 130]]]
    assert entry.changes["name"] == [None, "Besek bambu besar"]
    listing = visible_text(staff.get(f"{office}/products").get_data(as_text=True))
    assert "Besek bambu besar" in listing


def test_the_same_name_twice_gets_its_own_slug(staff, banjarnegara):
    office, programme_id = banjarnegara["office"], banjarnegara["programme_id"]
    assert new_product(staff, office, programme_id, name="Besek bambu").status_code == 302
    db.session.rollback()
    slugs = db.session.scalars(
        select(Product.slug).where(Product.name == "Besek bambu").order_by(Product.id)
    ).all()
    assert slugs == ["besek-bambu-banjarnegara", "besek-bambu-banjarnegara-2"]


def test_editing_keeps_the_slug_and_audits_the_tier_change(staff, banjarnegara):
    office = banjarnegara["office"]
    new_product(staff, office, banjarnegara["programme_id"])
    product_id = created().id
    edit = f"{office}/products/{product_id}/edit"
    form = visible_text(staff.get(edit).get_data(as_text=True))
    assert "besek-bambu-besar-banjarnegara" in form

    response = post_form(
        staff,
        edit,
        dict(
            BESEK_BESAR,
            name="Besek bambu jumbo",
            programme_id=str(banjarnegara["programme_id"]),
            **{"tiers-0-unit_price": "135", "tiers-2-min_quantity": "", "tiers-2-unit_price": ""},
        ),
    )

    assert response.status_code == 302
    product = db.session.get(Product, product_id)
    assert product.name == "Besek bambu jumbo"
    assert product.slug == "besek-bambu-besar-banjarnegara"
    assert [(t.min_quantity, t.unit_price) for t in product.tiers] == [(5000, 135)]
    # The dropped tier's row is deleted, not left behind.
    assert db.session.scalar(select(func.count()).where(PriceTier.product_id == product_id)) == 1
    update = audit_entries("product", product_id)[-1]
    assert update.action == "update"
    assert (update.user_id, update.facility_id) == (
        banjarnegara["staff"].id,
        banjarnegara["facility_id"],
    )
    assert update.changes["name"] == ["Besek bambu besar", "Besek bambu jumbo"]
    assert update.changes["tiers"] == [[[5000, 140], [10000, 130]], [[5000, 135]]]
    assert "slug" not in update.changes


def test_a_tier_dearer_than_the_base_price_is_explained_and_nothing_is_stored(staff, banjarnegara):
    office = banjarnegara["office"]
    before = count(Product), count(AuditEntry)

    response = new_product(
        staff, office, banjarnegara["programme_id"], **{"tiers-0-unit_price": "160"}
    )

    assert response.status_code == 422
    assert "cannot be above the base price" in visible_text(response.get_data(as_text=True))
    assert (count(Product), count(AuditEntry)) == before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"base_price": "1.600"}, "Enter a whole number, without dots or commas."),
        ({"base_price": "-1"}, "Enter a number from 0 to 1000000000."),
        ({"base_price": "1000000001"}, "Enter a number from 0 to 1000000000."),
        ({"min_order_qty": "0"}, "Enter a number from 1 to 1000000."),
        ({"order_multiple": "0"}, "Enter a number from 1 to 1000000."),
        ({"min_order_qty": "50"}, "The minimum order must be a whole number of packs"),
        ({"tiers-1-min_quantity": "5000", "tiers-1-unit_price": "120"}, "already starts at"),
        ({"tiers-1-min_quantity": "7000"}, "Enter the unit price from this quantity."),
        ({"name": "  "}, "Enter a name."),
    ],
)
def test_product_form_mistakes_are_explained(staff, banjarnegara, changes, message):
    response = new_product(staff, banjarnegara["office"], banjarnegara["programme_id"], **changes)
    assert response.status_code == 422
    assert message in visible_text(response.get_data(as_text=True))
    assert created() is None


def test_a_deactivated_product_leaves_the_storefront_and_can_come_back(staff, banjarnegara):
    office, besek_id = banjarnegara["office"], banjarnegara["besek_id"]
    edit = f"{office}/products/{besek_id}/edit"
    storefront_link = 'href="/products/besek-bambu-banjarnegara"'
    assert storefront_link in staff.get("/products").get_data(as_text=True)

    response = post_form(staff, f"{office}/products/{besek_id}/deactivate", form_page=edit)

    assert response.status_code == 302
    assert db.session.get(Product, besek_id).active is False
    assert storefront_link not in staff.get("/products").get_data(as_text=True)
    assert staff.get("/products/besek-bambu-banjarnegara").status_code == 404
    # Staff still find it in their own list, with its stock.
    listing = visible_text(staff.get(f"{office}/products").get_data(as_text=True))
    assert "Besek bambu" in listing and "Inactive" in listing
    entry = audit_entries("product", besek_id)[-1]
    assert (entry.action, entry.changes) == ("deactivate", {"active": [True, False]})
    assert (entry.user_id, entry.facility_id) == (
        banjarnegara["staff"].id,
        banjarnegara["facility_id"],
    )

    post_form(staff, f"{office}/products/{besek_id}/activate", form_page=edit)
    assert staff.get("/products/besek-bambu-banjarnegara").status_code == 200
    assert audit_entries("product", besek_id)[-1].action == "activate"


def test_a_post_without_the_csrf_token_is_refused(staff, banjarnegara):
    office, besek_id = banjarnegara["office"], banjarnegara["besek_id"]
    before = count(AuditEntry)

    deactivate = staff.post(f"{office}/products/{besek_id}/deactivate")
    create = staff.post(
        f"{office}/products/new",
        data=dict(BESEK_BESAR, programme_id=str(banjarnegara["programme_id"])),
    )

    assert (deactivate.status_code, create.status_code) == (400, 400)
    assert db.session.get(Product, besek_id).active is True
    assert created() is None
    assert count(AuditEntry) == before


# Photos


def test_a_png_photo_is_stored_and_served_in_the_storefront(staff, banjarnegara):
    office, besek_id = banjarnegara["office"], banjarnegara["besek_id"]

    response = upload(staff, office, besek_id, photo_file("PNG"), "besek.png")

    assert response.status_code == 302
    photo = db.session.scalar(
        select(ProductPhoto)
        .where(ProductPhoto.product_id == besek_id)
        .order_by(ProductPhoto.id.desc())
    )
    assert (photo.content_type, photo.position) == ("image/png", 1)  # after the demo photo
    served = staff.get(f"/photos/{photo.id}")
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    assert Image.open(io.BytesIO(served.data)).size == (640, 480)
    [entry] = audit_entries("product_photo", photo.id)
    assert entry.action == "create"
    assert entry.user_id == banjarnegara["staff"].id
    assert entry.facility_id == banjarnegara["facility_id"]
    assert entry.changes["content_type"] == [None, "image/png"]
    assert "data" not in entry.changes


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"Harga besek Rp 125 per buah, minimal 100 buah.\n", "besek.png", "not an image"),
        (b"GIF89a" + b"\x00" * 40, "besek.gif", "not an image"),
    ],
)
def test_a_file_that_is_not_a_photo_is_refused_and_nothing_is_stored(
    staff, banjarnegara, content, filename, message
):
    before = count(ProductPhoto), count(AuditEntry)

    response = upload(staff, banjarnegara["office"], banjarnegara["besek_id"], content, filename)

    assert response.status_code == 422
    assert message in visible_text(response.get_data(as_text=True))
    assert (count(ProductPhoto), count(AuditEntry)) == before


def test_a_photo_over_two_megabytes_is_refused(staff, banjarnegara, app):
    # A real PNG saved without compression: 2.4 MB, under the 4 MB request limit.
    big = photo_file("PNG", size=(900, 900), compress_level=0)
    assert app.config["MAX_PHOTO_BYTES"] < len(big) < app.config["MAX_CONTENT_LENGTH"]
    before = count(ProductPhoto)

    response = upload(staff, banjarnegara["office"], banjarnegara["besek_id"], big, "besek.png")

    assert response.status_code == 422
    assert "too large: at most 2 MB" in visible_text(response.get_data(as_text=True))
    assert count(ProductPhoto) == before


def test_a_phone_photo_comes_back_without_its_exif_location(staff, banjarnegara):
    exif = Image.Exif()
    exif[0x010F] = "Fiktif Phone"
    exif.get_ifd(0x8825)[2] = (7.0, 23.0, 50.0)  # GPS latitude, inside the Rutan
    raw = photo_file("JPEG", exif=exif.tobytes())
    assert b"Fiktif Phone" in raw

    upload(staff, banjarnegara["office"], banjarnegara["besek_id"], raw, "IMG_2026.jpg")

    photo_id = db.session.scalar(select(func.max(ProductPhoto.id)))
    served = staff.get(f"/photos/{photo_id}")
    assert served.mimetype == "image/jpeg"
    assert not Image.open(io.BytesIO(served.data)).getexif()
    assert b"Fiktif Phone" not in served.data


def test_staff_delete_a_photo(staff, banjarnegara):
    office, besek_id = banjarnegara["office"], banjarnegara["besek_id"]
    photo_id = db.session.scalar(select(ProductPhoto.id).where(ProductPhoto.product_id == besek_id))
    photos_page = f"{office}/products/{besek_id}/photos"
    assert f"/photos/{photo_id}" in staff.get(photos_page).get_data(as_text=True)

    response = post_form(staff, f"{photos_page}/{photo_id}/delete", form_page=photos_page)

    assert response.status_code == 302
    assert db.session.get(ProductPhoto, photo_id) is None
    assert staff.get(f"/photos/{photo_id}").status_code == 404
    [entry] = audit_entries("product_photo", photo_id)
    assert entry.action == "delete"
    assert (entry.user_id, entry.facility_id) == (
        banjarnegara["staff"].id,
        banjarnegara["facility_id"],
    )
    assert entry.changes["content_type"] == ["image/png", None]


def test_staff_see_the_photos_of_an_inactive_product(staff, banjarnegara):
    office, besek_id = banjarnegara["office"], banjarnegara["besek_id"]
    photo_id = db.session.scalar(select(ProductPhoto.id).where(ProductPhoto.product_id == besek_id))
    post_form(staff, f"{office}/products/{besek_id}/deactivate", form_page=f"{office}/products")

    assert staff.get(f"/photos/{photo_id}").status_code == 404  # the storefront's copy is gone
    own = staff.get(f"{office}/products/{besek_id}/photos/{photo_id}")
    assert own.status_code == 200
    assert own.mimetype == "image/png"
    assert "private" in own.headers["Cache-Control"]


# Who may do what


def banjarnegara_routes(office, besek_id, programme_id, photo_id):
    product = f"{office}/products/{besek_id}"
    return [
        ("GET", f"{office}/products"),
        ("GET", f"{office}/products/new"),
        ("POST", f"{office}/products/new"),
        ("GET", f"{product}/edit"),
        ("POST", f"{product}/edit"),
        ("POST", f"{product}/deactivate"),
        ("POST", f"{product}/activate"),
        ("GET", f"{product}/photos"),
        ("POST", f"{product}/photos"),
        ("GET", f"{product}/photos/{photo_id}"),
        ("POST", f"{product}/photos/{photo_id}/delete"),
        ("GET", f"{office}/programmes"),
        ("GET", f"{office}/programmes/new"),
        ("POST", f"{office}/programmes/new"),
        ("GET", f"{office}/programmes/{programme_id}/edit"),
        ("POST", f"{office}/programmes/{programme_id}/edit"),
    ]


def test_magetan_staff_get_404_for_every_banjarnegara_product_route(
    client, banjarnegara, facilities
):
    besek_id = banjarnegara["besek_id"]
    photo_id = db.session.scalar(select(ProductPhoto.id).where(ProductPhoto.product_id == besek_id))
    login(client, "staff.magetan@example.id")
    own_office = f"/office/{facilities['magetan']}"
    token_page = f"{own_office}/products/new"
    before = count(Product), count(ProductPhoto), count(AuditEntry)
    # Through Banjarnegara's office, and through their own office with Banjarnegara's ids.
    for office in (banjarnegara["office"], own_office):
        for method, url in banjarnegara_routes(
            office, besek_id, banjarnegara["programme_id"], photo_id
        ):
            if office == own_office and url.endswith(("/products", "/new", "/programmes")):
                continue  # those are Magetan's own pages
            if method == "GET":
                response = client.get(url)
            else:
                response = post_form(client, url, {"name": "Keset"}, form_page=token_page)
            assert response.status_code == 404, (method, url)
    assert (count(Product), count(ProductPhoto), count(AuditEntry)) == before
    assert db.session.get(Product, besek_id).active is True


def test_magetan_cannot_put_a_product_in_a_banjarnegara_programme(client, banjarnegara, facilities):
    client.set_cookie("lang", "en")
    login(client, "staff.magetan@example.id")
    office = f"/office/{facilities['magetan']}"
    form = client.get(f"{office}/products/new").get_data(as_text=True)
    assert "Keset kain perca" in form and "Besek bambu" not in form

    response = new_product(client, office, banjarnegara["programme_id"], name="Keset besar")

    assert response.status_code == 422
    assert "Choose one of this facility's programmes." in visible_text(
        response.get_data(as_text=True)
    )
    assert created("Keset besar") is None


def test_finance_may_see_stock_but_not_change_products(client, banjarnegara):
    login(client, "finance.banjarnegara@example.id")
    office, besek_id = banjarnegara["office"], banjarnegara["besek_id"]
    assert client.get(f"{office}/stock").status_code == 200
    for url in (
        f"{office}/products",
        f"{office}/products/new",
        f"{office}/products/{besek_id}/edit",
        f"{office}/products/{besek_id}/photos",
        f"{office}/programmes",
    ):
        assert client.get(url).status_code == 404, url
    response = post_form(
        client,
        f"{office}/products/{besek_id}/edit",
        dict(BESEK_BESAR, programme_id=str(banjarnegara["programme_id"])),
        form_page="/account",
    )
    assert response.status_code == 404
    assert db.session.get(Product, besek_id).name == "Besek bambu"


def test_buyers_get_404_and_visitors_are_sent_to_sign_in(client, banjarnegara):
    office, besek_id = banjarnegara["office"], banjarnegara["besek_id"]
    pages = (f"{office}/products", f"{office}/products/{besek_id}/edit", f"{office}/stock")
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    login(client, "buyer@example.id")
    for url in pages:
        assert client.get(url).status_code == 404, url


# Programmes


def test_staff_start_a_knitting_programme_and_correct_its_capacity(staff, banjarnegara):
    office = banjarnegara["office"]

    response = post_form(
        staff,
        f"{office}/programmes/new",
        {
            "name": "Rajut dengan penjahit lokal",
            "description": "Bersama penjahit di Banjarnegara.",
            "pieces_per_wbp_per_day": "2",
        },
    )

    assert response.status_code == 302
    db.session.rollback()
    programme = db.session.scalar(
        select(Programme).where(Programme.name == "Rajut dengan penjahit lokal")
    )
    assert programme.slug == "rajut-dengan-penjahit-lokal"
    assert programme.facility_id == banjarnegara["facility_id"]
    edit = f"{office}/programmes/{programme.id}/edit"
    response = post_form(
        staff,
        edit,
        {"name": "Rajut kain", "description": "", "pieces_per_wbp_per_day": "3"},
    )
    assert response.status_code == 302
    db.session.refresh(programme)
    assert (programme.name, programme.slug, programme.pieces_per_wbp_per_day) == (
        "Rajut kain",
        "rajut-dengan-penjahit-lokal",
        3,
    )
    create, update = audit_entries("programme", programme.id)
    assert (create.action, update.action) == ("create", "update")
    assert update.changes["pieces_per_wbp_per_day"] == [2, 3]
    assert update.user_id == banjarnegara["staff"].id
    # The new programme is offered in the product form.
    assert "Rajut kain" in staff.get(f"{office}/products/new").get_data(as_text=True)


def test_a_programme_needs_at_least_one_piece_a_day(staff, banjarnegara):
    before = count(Programme)
    response = post_form(
        staff,
        f"{banjarnegara['office']}/programmes/new",
        {"name": "Sablon", "description": "", "pieces_per_wbp_per_day": "0"},
    )
    assert response.status_code == 422
    assert "Enter a number from 1 to 1000000." in visible_text(response.get_data(as_text=True))
    assert count(Programme) == before


# Stock


def stock_row(html, name):
    text = visible_text(html)
    start = text.index(name)
    return text[start : start + 80]


def test_the_stock_page_shows_the_demo_besek_in_a_bounded_number_of_queries(
    client, banjarnegara, count_queries
):
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")
    url = f"{banjarnegara['office']}/stock"

    with count_queries() as first:
        html = client.get(url).get_data(as_text=True)
    row = stock_row(html, "Besek bambu")
    assert "1,600 pcs 0 pcs 1,600 pcs" in row

    # A sale allocates 400 and three more batches are started: the same number of queries.
    batch = db.session.scalar(select(Batch).where(Batch.product_id == banjarnegara["besek_id"]))
    batch.quantity_allocated = 400
    for n in range(3):
        db.session.add(
            Batch(
                product_id=banjarnegara["besek_id"],
                code=f"BSK-2026-1{n + 1}",
                status=BatchStatus.IN_PRODUCTION,
            )
        )
    db.session.commit()
    with count_queries() as second:
        html = client.get(url).get_data(as_text=True)
    assert "1,600 pcs 400 pcs 1,200 pcs 3" in stock_row(html, "Besek bambu")
    assert "40 pcs 0 pcs 40 pcs 0" in stock_row(html, "Tas rajut")
    assert first.count == second.count
    assert second.count <= 5
