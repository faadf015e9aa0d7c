"""The storefront as a visitor sees it, in Indonesian and in English."""

import re

import pytest

pytestmark = pytest.mark.usefixtures("demo")


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def get_text(client, url, lang="id"):
    client.set_cookie("lang", lang)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return visible_text(response.get_data(as_text=True))


def test_home_lists_the_demo_facilities_in_indonesian(client):
    text = get_text(client, "/")
    assert "Beli grosir langsung" in text
    assert "4 fasilitas" in text
    directory = get_text(client, "/facilities")
    for name in ("Banjarnegara", "Magetan", "Ruteng", "Serang"):
        assert f"Rutan Kelas IIB {name}" in directory


def test_english_is_one_switch_away(client):
    response = client.get("/language/en?next=/products")
    assert response.status_code == 302
    assert response.headers["Location"] == "/products"
    text = visible_text(client.get("/products").get_data(as_text=True))
    assert "products found" in text
    assert "Textiles" in text


def test_language_switch_never_redirects_to_another_site(client):
    response = client.get("/language/en?next=//evil.example/")
    assert response.headers["Location"] == "/"


def test_search_for_besek_finds_the_banjarnegara_besek(client):
    text = get_text(client, "/products?q=besek")
    assert "1 produk ditemukan" in text
    assert "Besek bambu" in text
    assert "Rutan Kelas IIB Banjarnegara" in text


def test_search_matches_word_prefixes_across_fields(client):
    assert "Keset kain perca" in get_text(client, "/products?q=perca+magetan")
    assert "0 produk ditemukan" in get_text(client, "/products?q=besek+magetan")


def test_search_words_match_literally(client):
    # In LIKE an unescaped "_" would match the space in "kain perca".
    assert "0 produk ditemukan" in get_text(client, "/products?q=kain_perca")


@pytest.mark.parametrize(
    ("query", "expected", "absent"),
    [
        ("facility=rutan-ruteng", "Kursi kayu", "Besek bambu"),
        ("province=Banten", "Lele segar", "Kursi kayu"),
        ("category=textiles", "Keset kain perca", "Lele segar"),
        ("in_stock=1", "Kursi kayu", "Set meja tamu"),
    ],
)
def test_listing_filters(client, query, expected, absent):
    text = get_text(client, f"/products?{query}")
    assert expected in text
    assert absent not in text


def test_product_page_shows_tiers_moq_stock_and_who_made_it(client):
    text = get_text(client, "/products/besek-bambu-banjarnegara")
    assert "mulai 100 buah Rp 125" in text
    assert "mulai 5.000 buah Rp 115" in text
    assert "Pesanan minimum: 100 buah" in text
    assert "Stok tersedia: 1.600 buah" in text
    assert "Dibuat oleh 6 WBP dalam program Besek bambu di Rutan Kelas IIB Banjarnegara" in text
    assert "Siap dari stok" in text


def test_product_page_estimates_lead_time_when_stock_is_short(client):
    text = get_text(client, "/products/besek-bambu-banjarnegara?quantity=5000")
    assert "5.000 buah @ Rp 115: Rp 575.000" in text
    # 3,400 short; six active makers at ten a day.
    assert "Stok kurang 3.400 buah" in text
    assert "sekitar 57 hari kerja" in text


def test_product_page_in_english(client):
    text = get_text(client, "/products/lele-segar-serang", lang="en")
    assert "Minimum order: 10 kg" in text
    assert "Made by 8 WBP in the Budidaya lele programme at Rutan Kelas IIB Serang" in text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/products?page=-1", 400),
        ("/products?page=abc", 400),
        ("/products?page=0", 400),
        ("/products?page=99999999999999999999", 400),
        ("/products?page=50", 404),
        ("/products?facility=rutan-tidak-ada", 404),
        ("/products?category=weapons", 400),
        ("/products?in_stock=maybe", 400),
        ("/products?q=" + "x" * 200, 400),
        ("/products/besek-bambu-banjarnegara?quantity=0", 400),
        ("/products/besek-bambu-banjarnegara?quantity=1.5", 400),
        ("/products/besek-bambu-banjarnegara?quantity=1000001", 400),
        ("/products/tidak-ada", 404),
        ("/facilities/tidak-ada", 404),
        ("/facilities?page=x", 400),
        ("/photos/999999", 404),
        ("/products?facility=%00", 400),
        ("/facilities?province=%00", 400),
        ("/products/a%00b", 404),
        ("/facilities/a%00", 404),
    ],
)
def test_bad_query_strings_get_a_clear_4xx_page(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    text = visible_text(response.get_data(as_text=True))
    assert "Karya Binaan" in text  # the site's own error page, not a bare one
    if status == 400:
        assert "Permintaan bermasalah" in text


def test_search_strings_that_look_like_sql_are_just_words(client):
    text = get_text(client, "/products?q=%27%20OR%201%3D1%20--")
    assert "0 produk ditemukan" in text


def test_pagination_keeps_the_filters(app, client):
    app.config["PAGE_SIZE"] = 2
    try:
        html = client.get("/products?category=furniture&page=1").get_data(as_text=True)
        assert "page=2" not in html  # two furniture products fit on one page
        html = client.get("/products").get_data(as_text=True)
        assert 'href="/products?page=2"' in html
        second = client.get("/products?page=2")
        assert second.status_code == 200
    finally:
        app.config["PAGE_SIZE"] = 24


@pytest.mark.parametrize("root", ["/", "/shop/"])
def test_card_links_are_what_url_for_makes(app, client, root):
    # Cards build their links from one prefix per list (catalog.labels.card_paths).
    from flask import url_for
    from sqlalchemy import select

    from catalog.models import Product
    from shop.extensions import db

    html = client.get("/products?q=besek", base_url=f"http://localhost{root}").get_data(
        as_text=True
    )
    besek = db.session.scalar(select(Product).where(Product.slug == "besek-bambu-banjarnegara"))
    with app.test_request_context(base_url=f"http://localhost{root}"):
        product = url_for("catalog.product", slug=besek.slug)
        photo = url_for("catalog.photo", photo_id=besek.photos[0].id)
    assert f'<a href="{product}">' in html
    assert f'<img src="{photo}"' in html


def test_photos_are_served_with_long_caching(client):
    html = client.get("/products/besek-bambu-banjarnegara").get_data(as_text=True)
    photo_url = re.search(r'src="(/photos/\d+)"', html).group(1)
    response = client.get(photo_url)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG")
    assert "immutable" in response.headers["Cache-Control"]


def test_health_check_reads_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}
