"""gunicorn settings; each can be overridden by GUNICORN_CMD_ARGS or command-line flags."""

import gc
import multiprocessing
import os


def default_workers() -> int:
    """A process per core and one more, to run while another waits on the database or Redis.

    The app is CPU-bound: more processes than that only share the cores, so each request takes
    longer. On 2 cores, 3 sync workers served as many requests/s as 5, with p99 a fifth lower
    (bench/README.md).
    """
    return multiprocessing.cpu_count() + 1


workers = int(os.environ.get("WEB_CONCURRENCY", default_workers()))
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
