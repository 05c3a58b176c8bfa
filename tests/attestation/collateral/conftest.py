"""A real local HTTP server standing in for Intel PCS / PCCS and AMD KDS (127.0.0.1 only)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Route:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    throttle: int = 0          # answer this many requests with 429 Retry-After: 0 first


@dataclass
class CollateralServer:
    """Serves `routes` by exact path+query and counts requests per path."""

    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, body: bytes, headers: dict[str, str] | None = None, *,
            status: int = 200, throttle: int = 0) -> None:
        self.routes[path] = Route(body, headers or {}, status, throttle)

    @property
    def total(self) -> int:
        return sum(self.hits.values())


def _handler(state: CollateralServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            with state.lock:
                state.hits[self.path] += 1
                count = state.hits[self.path]
            route = state.routes.get(self.path)
            if route is None:
                self._send(404, {}, b"not found")
            elif count <= route.throttle:
                self._send(429, {"Retry-After": "0"}, b"slow down")
            else:
                self._send(route.status, route.headers, route.body)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def collateral_server():
    state = CollateralServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
