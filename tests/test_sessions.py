"""The session cookie is signed with SECRET_KEY: a new key signs the buyer out, unless the old one
is kept in SECRET_KEY_FALLBACKS (the signing serializer is built once, so a changed key must
still be seen)."""

from .helpers import login


def test_a_new_secret_key_signs_everyone_out_unless_the_old_one_is_a_fallback(
    app, client, users, monkeypatch
):
    login(client, users["buyer"].email)
    assert client.get("/orders").status_code == 200
    old_key = app.config["SECRET_KEY"]

    monkeypatch.setitem(app.config, "SECRET_KEY", "a-new-secret-key")
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [old_key])
    assert client.get("/orders").status_code == 200

    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [])
    assert client.get("/orders").status_code == 302  # to the sign-in page
