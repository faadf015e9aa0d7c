"""shop/gunicorn_conf.py's worker hooks."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path

CONF = Path(__file__).resolve().parents[2] / "shop" / "gunicorn_conf.py"


def test_a_worker_freezes_the_loaded_apps_objects_out_of_the_collectors_scans():
    hooks = runpy.run_path(str(CONF))
    assert gc.get_freeze_count() == 0
    try:
        hooks["post_worker_init"](worker=None)
        # Everything alive once the app is loaded is left out of every later collection.
        assert gc.get_freeze_count() > 1000
        assert gc.get_count()[0] < 100  # and the counting starts afresh
    finally:
        gc.unfreeze()
