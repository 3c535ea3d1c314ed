"""A real HTTP server on 127.0.0.1 honouring Range requests, for the remote-reading tests and
the link benchmark (bench/bench_remote.py).

``with RangeServer(root) as srv: srv.url("model/config.json")`` serves the files under ``root``
on a free port from a thread, and stops at the end. It counts what it serves
(``bytes_served``, ``requests``, ``ranges``) and can misbehave on purpose (``mode``):

- ``"ok"``: ``206 Partial Content`` for a single ``bytes=a-b`` range, ``200`` otherwise;
- ``"ignore-range"``: always ``200`` with the whole file;
- ``"short"``: a range answer holds only the first half of what was asked (an honest short
  ``Content-Range``);
- ``"drop"``: the first ``drops`` range answers announce the full length, send half and close
  the connection; later ones are served normally.

``latency`` (seconds added per request) and ``bandwidth`` (bytes/s, one cap shared by all
connections) simulate a slow link. ``headers`` are added to every answer that serves a file
(e.g. the ``X-Repo-Commit`` a Hugging Face endpoint sends, so ``huggingface_hub`` can download
from this server through ``HF_ENDPOINT``): a dict, or a function of the request path giving one.
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable

from _http_test_server import RANGE as _RANGE, Link, ThreadingHTTPServer, stop



class RangeServer:
    def __init__(self, root: str | os.PathLike, *, mode: str = "ok", drops: int = 1,
                 latency: float = 0.0, bandwidth: float | None = None,
                 headers: dict | Callable[[str], dict] | None = None):
        self.root = Path(root).resolve()
        self.headers = headers if callable(headers) else (lambda _path, h=dict(headers or {}): h)
        self.mode, self.drops, self.latency, self.bandwidth = mode, drops, latency, bandwidth
        self.bytes_served = 0
        self.requests = 0
        self.ranges: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()
        self._link = Link(bandwidth)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away mid-answer (a killed run): nothing to answer

            def _file(self) -> Path | None:
                p = (outer.root / self.path.lstrip("/").split("?")[0]).resolve()
                return p if p.is_file() and outer.root in p.parents else None

            def _head(self, code: int, length: int, extra: dict | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(length))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                for k, v in {**(outer.headers(self.path) if code in (200, 206) else {}), **(extra or {})}.items():
                    self.send_header(k, v)
                self.end_headers()

            def _etag(self, p: Path) -> dict:
                st = p.stat()
                return {"ETag": f'"{st.st_mtime_ns:x}-{st.st_size:x}"'}

            def _count_and_find(self) -> Path | None:
                """Counts the request; the file asked for, or None after answering 404."""
                with outer._lock:
                    outer.requests += 1
                p = self._file()
                if p is None:
                    self._head(404, 0)
                return p

            def do_HEAD(self):
                p = self._count_and_find()
                if p is not None:
                    self._head(200, p.stat().st_size, self._etag(p))

            def do_GET(self):
                if outer.latency:
                    time.sleep(outer.latency)
                p = self._count_and_find()
                if p is None:
                    return
                size = p.stat().st_size
                m = _RANGE.match(self.headers.get("Range", ""))
                if m is None or outer.mode == "ignore-range":
                    self._head(200, size, self._etag(p))
                    self._send(p, 0, size, size)
                    return
                a = int(m.group(1))
                b = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
                if a >= size or b < a:
                    self._head(416, 0, {"Content-Range": f"bytes */{size}"})
                    return
                n = b - a + 1
                with outer._lock:
                    outer.ranges.append((p.name, a, b + 1))
                    drop = outer.mode == "drop" and outer.drops > 0
                    if drop:
                        outer.drops -= 1
                if outer.mode == "short" and n > 1:
                    n = n // 2
                self._head(206, n, {"Content-Range": f"bytes {a}-{a + n - 1}/{size}", **self._etag(p)})
                if drop:
                    self._send(p, a, max(1, n // 2), n)
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self._send(p, a, n, n)

            def _send(self, p: Path, a: int, n: int, _announced: int) -> None:
                with open(p, "rb") as fh:
                    fh.seek(a)
                    left = n
                    while left:
                        chunk = fh.read(min(left, 1 << 16))
                        if not chunk:
                            break
                        outer._link.pace(len(chunk))  # one link shared by all connections
                        try:
                            self.wfile.write(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                        left -= len(chunk)
                        with outer._lock:
                            outer.bytes_served += len(chunk)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, rel: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{rel.lstrip('/')}"

    def reset(self) -> None:
        with self._lock:
            self.bytes_served, self.requests, self.ranges = 0, 0, []

    def __enter__(self) -> RangeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        stop(self._httpd, self._thread)
