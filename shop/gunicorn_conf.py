"""gunicorn settings; each can be overridden by GUNICORN_CMD_ARGS or command-line flags."""

import gc
import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# The app writes one JSON line per request itself (shop/request_log.py), with the request id and
# user and without the query string; gunicorn's access log would repeat each request, query and all.
accesslog = None
# gunicorn's own messages go to stderr, beside the app's log lines.
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """The app is loaded and its objects live as long as the worker: the garbage collector stops
    scanning them. A full collection of them took 225-410 ms under load (bench/README.md),
    stalling the request that triggered it."""
    gc.collect()
    gc.freeze()
