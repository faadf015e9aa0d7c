"""Sign-in, registration, password reset and the login rate limit."""

import re
import time

import pytest
from sqlalchemy import select

from shop.accounts.models import Role, User
from shop.extensions import db, limiter
from shop.mail import OutboxMessage

from .helpers import PASSWORD, csrf_token, login, post_form, visible_text


@pytest.fixture(autouse=True)
def fresh_limits(app):
    limiter.reset()


def test_staff_signs_in_and_reaches_their_back_office(client, users, facilities):
    login(client, "staff.banjarnegara@example.id")
    response = client.get("/office/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/office/{facilities['banjarnegara']}/")
    page = client.get(response.headers["Location"])
    assert "Rutan Kelas IIB Banjarnegara" in page.get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message(client, users):
    response = post_form(
        client, "/login", {"email": "buyer@example.id", "password": "salah-sekali-12"}
    )
    assert response.status_code == 200
    assert "Email atau kata sandi tidak tepat" in visible_text(response.get_data(as_text=True))
    assert client.get("/account").status_code == 302  # still anonymous


@pytest.mark.parametrize("email", ["nobody@example.id", "buyer@example.id"])
def test_a_refused_sign_in_checks_a_password_whether_or_not_the_account_exists(
    client, users, monkeypatch, email
):
    # The scrypt check is what takes time: skipping it for unknown addresses would tell, by the
    # time a refusal takes, which addresses have accounts.
    from shop.accounts import auth, models

    checks = []
    for module in (auth, models):
        real = module.check_password_hash
        monkeypatch.setattr(
            module, "check_password_hash", lambda h, p, real=real: checks.append(p) or real(h, p)
        )
    response = post_form(client, "/login", {"email": email, "password": "salah-sekali"})
    assert response.status_code == 200
    assert checks == ["salah-sekali"]


def test_anonymous_visitor_is_sent_to_login(client, facilities):
    for url in ("/office/", f"/office/{facilities['magetan']}/", "/admin/", "/account"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login?next=" in response.headers["Location"]


def test_buyer_registers_a_business_account(client, app_ctx):
    response = post_form(
        client,
        "/register",
        {
            "business_name": "Toko Ikan Asin Bu Sari",
            "contact_person": "Sari",
            "phone": "0812-3456-7890",
            "email": "Sari@Example.id",
            "address": "Kelurahan Semarang, Banjarnegara",
            "npwp": "",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "sari@example.id"))
    assert user.has_role(Role.BUYER)
    assert user.buyer_profile.business_name == "Toko Ikan Asin Bu Sari"
    assert user.password_hash.startswith("scrypt:")
    assert "Toko Ikan Asin Bu Sari" in client.get("/account").get_data(as_text=True)


def test_registration_errors_are_explained_and_store_nothing(client, app_ctx):
    response = post_form(
        client,
        "/register",
        {
            "business_name": "",
            "contact_person": "Sari",
            "phone": "12",
            "email": "bukan-email",
            "address": "Banjarnegara",
            "npwp": "123",
            "password": "pendek",
            "confirm": "lain",
        },
    )
    assert response.status_code == 200
    text = visible_text(response.get_data(as_text=True))
    assert "8 sampai 15 digit" in text
    assert "NPWP terdiri dari 15 atau 16 digit" in text
    assert db.session.scalar(select(User)) is None


def test_login_without_csrf_token_is_refused(client, users):
    response = client.post("/login", data={"email": "buyer@example.id", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account").status_code == 302


def test_logout_needs_a_post_with_token(client, users):
    login(client, "buyer@example.id")
    assert client.post("/logout").status_code == 400
    token = csrf_token(client, "/account")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/account").status_code == 302


def test_too_many_attempts_on_one_account_are_refused(app, client, users):
    for _ in range(5):
        post_form(client, "/login", {"email": "buyer@example.id", "password": "salah-salah-1"})
    response = post_form(client, "/login", {"email": "buyer@example.id", "password": PASSWORD})
    assert response.status_code == 429
    assert "Terlalu banyak percobaan masuk" in visible_text(response.get_data(as_text=True))
    # Another account from the same address is not locked out by the first one's limit.
    assert login(client, "admin@example.id").status_code == 302


def test_too_many_attempts_from_one_address_are_refused(app, client, users):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "3 per 15 minutes"
    try:
        for n in range(3):
            post_form(client, "/login", {"email": f"x{n}@example.id", "password": "salah-salah-1"})
        response = post_form(client, "/login", {"email": "admin@example.id", "password": PASSWORD})
        assert response.status_code == 429
    finally:
        app.config["LOGIN_LIMIT_PER_ADDRESS"] = "30 per 15 minutes"


def reset_link(email):
    message = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.recipient == email)
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None, "no reset mail queued"
    return re.search(r"https?://[^/\s]+(/password/reset/\S+)", message.body).group(1)


def test_password_reset_token_works_once(client, users):
    post_form(client, "/password/forgot", {"email": "buyer@example.id"})
    path = reset_link("buyer@example.id")
    new = "kata-sandi-baru-123"
    response = post_form(client, path, {"password": new, "confirm": new})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login")
    login(client, "buyer@example.id", new)
    again = client.get(path)
    assert again.status_code == 302
    assert "/password/forgot" in again.headers["Location"]


def test_password_reset_token_expires(app, client, users):
    post_form(client, "/password/forgot", {"email": "buyer@example.id"})
    path = reset_link("buyer@example.id")
    app.config["PASSWORD_RESET_MAX_AGE"] = 1
    try:
        time.sleep(2.1)
        response = client.get(path)
        assert response.status_code == 302
        assert "/password/forgot" in response.headers["Location"]
    finally:
        app.config["PASSWORD_RESET_MAX_AGE"] = 3600


def test_forgot_password_does_not_reveal_who_has_an_account(client, users):
    known = post_form(client, "/password/forgot", {"email": "buyer@example.id"})
    unknown = post_form(client, "/password/forgot", {"email": "nobody@example.id"})
    assert known.status_code == unknown.status_code == 302
    assert (
        db.session.scalar(
            select(OutboxMessage).where(OutboxMessage.recipient == "nobody@example.id")
        )
        is None
    )


def test_password_change_ends_other_sessions(client, app, users):
    login(client, "buyer@example.id")
    other = app.test_client()
    login(other, "buyer@example.id")
    buyer = db.session.merge(users["buyer"])
    buyer.set_password("kata-sandi-baru-123")
    db.session.commit()
    assert client.get("/account").status_code == 302
    assert other.get("/account").status_code == 302
