"""API tokens: a buyer creates one for their own system, sees it once, and may revoke it.

Only the token's SHA-256 is stored (and a short prefix the buyer recognises it by), so a copy of
the database lets nobody call the API. The buyer's pages that manage tokens live here too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from shop import audit
from shop.accounts.models import Role, User
from shop.extensions import db
from shop.i18n import gettext as _
from shop.i18n import lazy_gettext as _l
from shop.policy import roles_required

from .models import ApiToken
from .views import bp

# "kb_" tells a leaked token apart in logs and secret scanners; 32 random bytes cannot be guessed.
TOKEN_MARK = "kb_"  # noqa: S105 (a fixed label, not a secret)
TOKEN_BYTES = 32
PREFIX_LENGTH = 11
MAX_ACTIVE_TOKENS = 10
# Recording every use would be a write per request; this is exact enough to spot a stale token.
LAST_USED_PRECISION = timedelta(minutes=5)


def new_token() -> str:
    return TOKEN_MARK + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    plain: str  # shown to the buyer once, never stored


class TooManyTokens(Exception):
    """The buyer already has the most active tokens allowed; nothing was written."""


def active_tokens(user_id: int) -> int:
    return (
        db.session.scalar(
            select(func.count(ApiToken.id)).where(
                ApiToken.user_id == user_id, ApiToken.revoked.is_(False)
            )
        )
        or 0
    )


def create_token(user: User, name: str) -> CreatedToken:
    if active_tokens(user.id) >= MAX_ACTIVE_TOKENS:
        raise TooManyTokens
    plain = new_token()
    token = ApiToken(
        user_id=user.id,
        name=name.strip(),
        token_hash=token_hash(plain),
        prefix=plain[:PREFIX_LENGTH],
    )
    db.session.add(token)
    audit.record("api_token.create", token, facility_id=None)
    db.session.commit()
    return CreatedToken(token, plain)


def revoke_token(token: ApiToken) -> None:
    if token.revoked:
        return
    before = audit.snapshot(token)
    token.revoked = True
    audit.record("api_token.revoke", token, facility_id=None, before=before)
    db.session.commit()


def authenticate(plain: str) -> User | None:
    """The buyer whose active token this is, or None: unknown, revoked, or no longer a buyer."""
    if not plain.startswith(TOKEN_MARK):
        return None
    token = db.session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == token_hash(plain), ApiToken.revoked.is_(False)
        )
    )
    if token is None or not token.user.active or not token.user.has_role(Role.BUYER):
        return None
    now = datetime.now(UTC).replace(tzinfo=None)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        token.last_used_at = now
        db.session.commit()
    return token.user


class TokenForm(FlaskForm):
    name = StringField(
        _l("Name of the token"),
        validators=[DataRequired(), Length(max=80)],
    )


class RevokeForm(FlaskForm):
    """Only the CSRF token: the token to revoke is named in the URL."""


def _own_tokens() -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == current_user.id)
            .order_by(ApiToken.revoked, ApiToken.id.desc())
        )
    )


def _page(form: TokenForm, created: CreatedToken | None = None, status: int = 200) -> Response:
    response = make_response(
        render_template(
            "orders/api_tokens.html",
            form=form,
            tokens=_own_tokens(),
            created=created,
            max_active=MAX_ACTIVE_TOKENS,
        ),
        status,
    )
    # The page may carry a token in plain text: no cache may keep it.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/account/api-tokens")
@roles_required(Role.BUYER)
def api_tokens() -> Response:
    return _page(TokenForm(formdata=None))


@bp.post("/account/api-tokens")
@roles_required(Role.BUYER)
def api_token_create() -> Response:
    form = TokenForm()
    if not form.validate():
        return _page(form, status=422)
    try:
        created = create_token(current_user, form.name.data or "")
    except TooManyTokens:
        form.name.errors.append(
            _(
                "You already have %(n)s active tokens. Revoke one you no longer use first.",
                n=MAX_ACTIVE_TOKENS,
            )
        )
        return _page(form, status=422)
    # Rendered, not redirected: the plain token must not travel through the session.
    return _page(TokenForm(formdata=None), created=created)


@bp.post("/account/api-tokens/<int:token_id>/revoke")
@roles_required(Role.BUYER)
def api_token_revoke(token_id: int) -> Response:
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == current_user.id)
    )
    if token is None:
        abort(404)
    if not RevokeForm().validate():
        abort(400)
    revoke_token(token)
    flash(_("The token %(name)s is revoked; it no longer opens the API.", name=token.name), "info")
    return redirect(url_for("orders.api_tokens"))
