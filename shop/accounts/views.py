"""Sign in, sign out, buyer registration and password reset."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from shop import mail, params
from shop.extensions import db, limiter
from shop.i18n import gettext as _

from . import auth
from .forms import ForgotPasswordForm, LoginForm, NewPasswordForm, RegisterForm
from .models import BuyerProfile, Role, RoleGrant, User

bp = Blueprint("accounts", __name__)


def _account_key() -> str:
    return "login:" + request.form.get("email", "").strip().lower()


def _failed(response: Response) -> bool:
    # Only failed attempts count against the limits; a success redirects.
    return response.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_failed,
    error_message=lambda: _("Too many sign-in attempts. Please wait a few minutes."),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed,
    error_message=lambda: _("Too many sign-in attempts. Please wait a few minutes."),
)
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        user = auth.signed_in_user(form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user, remember=bool(form.remember.data))
            return redirect(params.safe_next(request.args.get("next"), url_for("catalog.home")))
        flash(_("The email or password is not right."), "error")
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("catalog.home"))


@bp.route("/register", methods=["GET", "POST"])
def register() -> str | Response:
    form = RegisterForm()
    if form.validate_on_submit():
        if auth.find_by_email(form.email.data or "") is not None:
            form.email.errors.append(_("An account with this email already exists."))
        else:
            user = User(
                email=(form.email.data or "").strip().lower(),
                name=form.contact_person.data,
                phone=form.phone.data,
            )
            user.set_password(form.password.data or "")
            user.grants.append(RoleGrant(role=Role.BUYER))
            user.buyer_profile = BuyerProfile(
                business_name=form.business_name.data,
                contact_person=form.contact_person.data,
                phone=form.phone.data,
                address=form.address.data,
                npwp=form.npwp.data or None,
            )
            db.session.add(user)
            db.session.commit()
            login_user(user)
            flash(_("Welcome, %(name)s. Your buyer account is ready.", name=user.name), "info")
            return redirect(url_for("catalog.home"))
    return render_template("accounts/register.html", form=form)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def forgot_password() -> str | Response:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = auth.find_by_email(form.email.data or "")
        if user is not None and user.active:
            link = url_for("accounts.reset_password", token=auth.reset_token(user), _external=True)
            mail.queue(
                user.email,
                _("Reset your Karya Binaan password"),
                _(
                    "Open this link within an hour to choose a new password:\n%(link)s\n\n"
                    "If you did not ask for this, ignore this message.",
                    link=link,
                ),
            )
            db.session.commit()
        # The same answer either way, so the form does not reveal who has an account.
        flash(_("If an account uses that email, we have sent it a link."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> str | Response:
    user = auth.user_for_reset_token(token)
    if user is None:
        flash(_("That link has expired or was already used. Ask for a new one."), "error")
        return redirect(url_for("accounts.forgot_password"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        user.set_password(form.password.data or "")
        db.session.commit()
        flash(_("Your password is changed. Please sign in."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/reset.html", form=form)


@bp.get("/account")
@login_required
def account() -> str:
    return render_template("accounts/account.html", user=current_user)
