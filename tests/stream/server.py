"""Run the collector's ASGI app with uvicorn in a background thread, configured as
`inboxgraph collect` runs it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import uvicorn

from inboxgraph.collector import CollectorSettings, server_config
from tests.local_kafka import free_port


@contextmanager
def serve(app: object, settings: CollectorSettings | None = None) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, settings or CollectorSettings()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
        assert time.monotonic() < deadline, "the collector did not start"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
