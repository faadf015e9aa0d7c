"""Servers on a loopback port in a thread of this process, for the benchmarks and the tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer


@contextmanager
def serving(server: BaseServer) -> Iterator[str]:
    """Serves `server` (already bound) in a daemon thread and yields its base URL; afterwards it
    is stopped, its thread joined and its socket closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
