"""Worker for the concurrency tests: a process of buyer threads, each placing one order."""

from __future__ import annotations

import os
import threading

os.environ.setdefault("SECRET_KEY", "test-secret-key")


def buy_concurrently(database_url: str, buyer_ids: list[int], product_id: int, quantity: int):
    """Each buyer places an order for `quantity` at the same moment; returns each outcome."""
    from orders.checkout import CheckoutRefused, OutOfStock, place_orders
    from shop import create_app
    from shop.accounts.models import User
    from shop.extensions import db

    from .orders_fixtures import checkout

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    start = threading.Barrier(len(buyer_ids))
    outcomes: dict[int, str] = {}

    def one_buyer(buyer_id: int) -> None:
        with app.app_context():
            buyer = db.session.get(User, buyer_id)
            start.wait()
            try:
                [order] = place_orders(buyer, checkout({product_id: quantity}))
                outcomes[buyer_id] = f"placed {order.lines[0].quantity}"
            except OutOfStock as refused:
                offered = refused.lines[0].made_to_order
                outcomes[buyer_id] = f"out of stock, {offered} offered made to order"
            except CheckoutRefused as refused:
                outcomes[buyer_id] = f"refused: {refused.messages}"
            except Exception as error:  # reported back to the test, which fails on it
                outcomes[buyer_id] = f"error: {type(error).__name__}: {error}"

    threads = [threading.Thread(target=one_buyer, args=(b,)) for b in buyer_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with app.app_context():
        db.engine.dispose()
    return outcomes
