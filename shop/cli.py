"""Command-line tools operators rely on: `flask --app shop seed-demo` and friends."""

from __future__ import annotations

import click
from flask import Flask


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Load the demo facilities, products, batches and (fictional) makers. Safe to repeat."""
        from catalog import demo

        demo.seed()
        click.echo("Demo data loaded.")
