"""Login sessions and password-reset tokens."""

from __future__ import annotations

import functools
import secrets

from flask import current_app
from flask_login import LoginManager
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from shop.extensions import db
from shop.i18n import lazy_gettext as _l

from .models import User

RESET_SALT = "password-reset"


def configure(manager: LoginManager) -> None:
    manager.login_view = "accounts.login"
    manager.login_message = _l("Please sign in to see that page.")
    manager.login_message_category = "info"
    manager.session_protection = "basic"
    manager.user_loader(load_user)


def load_user(session_id: str) -> User | None:
    """The session's user; a deactivated account's sessions end here."""
    user_id, _, fingerprint = session_id.partition(":")
    if not user_id.isdecimal():
        return None
    # Every page asks the user's roles: loaded with the user, one statement instead of two.
    user = db.session.get(User, int(user_id), options=[joinedload(User.grants)])
    if user is None or not user.active or user.get_id() != session_id:
        return None
    return user


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


@functools.cache
def _stand_in_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def signed_in_user(email: str, password: str) -> User | None:
    """The active account with these credentials, or None.

    An unknown address costs the same password check as a known one, so that the time a refusal
    takes does not tell whether the account exists.
    """
    user = find_by_email(email)
    if user is None:
        check_password_hash(_stand_in_hash(), password)
        return None
    return user if user.check_password(password) and user.active else None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def reset_token(user: User) -> str:
    """A signed token naming the user and the password it may replace.

    Once the password changes the fingerprint no longer matches, so a token works only once.
    """
    return _serializer().dumps({"user": user.id, "fp": user.password_hash[-16:]})


def user_for_reset_token(token: str) -> User | None:
    try:
        data = _serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int):
        return None
    user = db.session.get(User, data["user"])
    if user is None or not user.active or user.password_hash[-16:] != data.get("fp"):
        return None
    return user
