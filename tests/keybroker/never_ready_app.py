"""An application factory that never returns: a worker serving it stays in its start-up until killed
(tests/keybroker/test_serving.py runs a supervisor on it)."""

from __future__ import annotations

import time


def app():
    while True:
        time.sleep(3600)
