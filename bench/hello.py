"""A bare Flask app, the yardstick of bench/load.py: what gunicorn and Flask alone serve here.

Served by bench/load.py as `bench.hello:app` with the shop's gunicorn settings and driven by the
same locust users as the storefront, so the listing's requests/s can be read as a share of it.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
