"""A local HTTP server standing in for a models mirror (SVC_MODELS_MIRROR): it serves the
bytes put in ``files`` under their registry file names, the ``slow`` ones in small chunks
(so a download can be cancelled in the middle)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ModelsMirror:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.slow: set[str] = set()
        self.url = ""


@contextmanager
def models_mirror() -> Iterator[ModelsMirror]:
    mirror = ModelsMirror()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            name = self.path.lstrip("/")
            body = mirror.files.get(name)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            slow = name in mirror.slow
            step = 64 * 1024 if slow else max(len(body), 1)
            try:
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    if slow:
                        time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    mirror.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        yield mirror
    finally:
        httpd.shutdown()
