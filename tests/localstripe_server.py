"""Serves localstripe on 127.0.0.1 only, keeping nothing on disk (parallel runs share no state).

Run as `python -m tests.localstripe_server PORT`; the payment tests start it as a subprocess.
"""

import sys

from aiohttp import web
from localstripe.resources import store
from localstripe.server import app


def main() -> None:
    port = int(sys.argv[1])
    # The plain command reloads and rewrites /tmp/localstripe.pickle: shared between runs.
    store.try_load_from_disk = lambda: None
    store.dump_to_disk = lambda: None
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
