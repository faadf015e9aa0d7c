"""Karya Binaan: the application factory. Nothing happens at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)

    from . import config, page_cache, request_log

    app.config.from_mapping(config.from_environment(instance))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(ROOT / "translations")
    if test_config:
        app.config.update(test_config)

    request_log.register(app)  # first, so its hooks wrap every other's
    page_cache.register(app)  # next: a cached page skips every later hook
    _init_extensions(app)
    _register_blueprints(app)

    from orders.quotes import register_cli as register_quote_cli

    from . import cli, errors, web

    errors.register(app)
    web.register(app)
    cli.register(app)
    register_quote_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    from . import database
    from .accounts import auth
    from .extensions import babel, csrf, db, limiter, login_manager, migrate
    from .i18n import register as register_translations
    from .i18n import select_locale

    db.init_app(app)
    with app.app_context():
        database.configure_engine(db.engine)
    database.register(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    babel.init_app(app, locale_selector=select_locale)
    register_translations(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    auth.configure(login_manager)


def _register_blueprints(app: Flask) -> None:
    # Importing the models here registers every table with the metadata Alembic compares.
    import catalog.freshness  # noqa: F401  (product pages forgotten when they change)
    import catalog.models  # noqa: F401
    import finance.models  # noqa: F401
    import orders.api_tokens  # noqa: F401
    import orders.documents  # noqa: F401  (routes register on the orders blueprints)
    import orders.models  # noqa: F401
    import orders.quotes  # noqa: F401
    import payments.models  # noqa: F401
    import payments.pages  # noqa: F401  (routes register on the payments and orders blueprints)
    from catalog import labels
    from catalog.office import bp as catalog_office_bp
    from catalog.views import bp as catalog_bp
    from finance.pages import finance_office, impact
    from orders import cart
    from orders import labels as order_labels
    from orders.api import bp as api_bp
    from orders.office import bp as orders_office_bp
    from orders.views import bp as orders_bp
    from payments.views import bp as payments_bp

    from . import admin, audit, mail, office  # noqa: F401
    from .accounts.views import bp as accounts_bp
    from .extensions import csrf
    from .web import bp as web_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(catalog_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(orders_bp)
    app.register_blueprint(orders_office_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(payments_bp)
    csrf.exempt(api_bp)  # the API authenticates each request by token, not by cookie
    app.register_blueprint(office.bp)
    app.register_blueprint(catalog_office_bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(finance_office)
    app.register_blueprint(impact)
    office.register(app)
    labels.register(app)
    order_labels.register(app)
    cart.register(app)
