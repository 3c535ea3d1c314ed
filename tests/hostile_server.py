"""An HTTP server on 127.0.0.1 that misbehaves on purpose, for the transport's tests.

``with HostileServer(root, policy) as srv:`` serves the files under ``root``; for every request
``policy(method, path, byte_range)`` (``byte_range``: ``(a, b)`` inclusive, or None) names how
to answer it:

- ``"ok"``: honestly (``206`` with ``Content-Range``, ``200`` for a whole file, ``ETag``);
- ``"wrong-start"``: a ``206`` whose ``Content-Range`` (and bytes) start one byte later;
- ``"prefix-200"``: a ``200`` carrying exactly the requested number of bytes from the file's start;
- ``"changed"``: the file replaced: another ``ETag`` and other bytes (honest ranges of them);
- ``"wrong-total"``: a ``206`` whose ``Content-Range`` names another file size;
- ``"bad-content-range"``: a ``206`` with a malformed ``Content-Range``;
- ``"huge-length"``: the right ``Content-Range`` with ``Content-Length: 10**12`` (then closes);
- ``"endless"``: a ``200`` without a length that never ends (closed when the client goes);
- ``"trickle"``: the right headers, then one byte every 0.2 s;
- ``"drop"``: the right headers, half the body, then the connection closed;
- ``"short"``: an honest ``206`` of the first half of the range;
- ``"junk"``: the right answer followed by garbage on the keep-alive connection;
- ``"429"``: ``Retry-After: 1``; ``"503"``: a server error;
- ``"redirect-loop"``: a ``302`` to the same URL.

It counts requests (:attr:`requests`) and stops, with every connection thread, on exit.
"""
from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable, Optional

from _http_test_server import RANGE as _RANGE, serving, stop

BEHAVIOURS = ("ok", "wrong-start", "prefix-200", "changed", "wrong-total", "bad-content-range", "huge-length",
              "endless", "trickle", "drop", "short", "junk", "429", "503", "redirect-loop")


class HostileServer:
    def __init__(self, root: str | os.PathLike, policy: Callable[[str, str, Optional[tuple]], str]):
        self.root = Path(root).resolve()
        self.policy = policy
        self.requests = 0
        self.seen: list = []  # behaviours used, in order
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd, self._thread = serving("127.0.0.1", self._serve, gone=(OSError,))

    def url(self, rel: str = "") -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{rel.lstrip('/')}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()  # endless and trickling answers end
        stop(self._httpd, self._thread)

    # ------------------------------------------------------------------ answering
    def _head(self, h, code: int, headers: dict) -> None:
        h.send_response(code)
        for k, v in headers.items():
            h.send_header(k, str(v))
        h.end_headers()

    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        p = (self.root / h.path.lstrip("/").split("?")[0]).resolve()
        with self._lock:
            self.requests += 1
        if not p.is_file() or self.root not in p.parents:
            return self._head(h, 404, {"Content-Length": 0})
        data = p.read_bytes()
        size = len(data)
        m = _RANGE.match(h.headers.get("Range", ""))
        rng = None
        if m:
            rng = (int(m.group(1)), min(int(m.group(2)) if m.group(2) else size - 1, size - 1))
        how = "ok" if head else self.policy("GET", p.name, rng)
        with self._lock:
            self.seen.append(how)
        etag = f'"v1-{size}"'
        if how == "changed":
            data, etag = bytes(b ^ 0x55 for b in data), f'"v2-{size}"'
        if head:
            return self._head(h, 200, {"Content-Length": size, "ETag": etag, "Accept-Ranges": "bytes"})
        getattr(self, "_" + how.replace("-", "_"))(h, data, size, rng, etag)

    def _body(self, h, data: bytes, a: int, b: int, etag: str, code: int = 206, extra: Optional[dict] = None):
        headers = {"Content-Length": b - a + 1, "ETag": etag}
        if code == 206:
            headers["Content-Range"] = f"bytes {a}-{b}/{len(data)}"
        headers.update(extra or {})
        self._head(h, code, headers)
        h.wfile.write(data[a: b + 1])

    def _ok(self, h, data, size, rng, etag):
        if rng is None:
            return self._body(h, data, 0, size - 1, etag, code=200)
        self._body(h, data, rng[0], rng[1], etag)

    _changed = _ok

    def _wrong_start(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        k = 1 if b + 1 < size else -1
        self._body(h, data, a + k, b + k, etag)

    def _prefix_200(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        self._body(h, data, 0, b - a, etag, code=200)

    def _wrong_total(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        self._body(h, data, a, b, etag, extra={"Content-Range": f"bytes {a}-{b}/{size + 4096}"})

    def _bad_content_range(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        self._body(h, data, a, b, etag, extra={"Content-Range": "bytes nonsense"})

    def _huge_length(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        self._head(h, 206, {"Content-Length": 10**12, "Content-Range": f"bytes {a}-{b}/{size}", "ETag": etag})
        h.close_connection = True

    def _endless(self, h, data, size, rng, etag):
        self._head(h, 200, {"ETag": etag, "Connection": "close"})
        h.close_connection = True
        chunk = b"x" * 65536
        while not self._stop.is_set():
            h.wfile.write(chunk)

    def _trickle(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        self._head(h, 206, {"Content-Length": b - a + 1, "Content-Range": f"bytes {a}-{b}/{size}", "ETag": etag})
        for i in range(a, b + 1):
            if self._stop.wait(0.2):
                return
            h.wfile.write(data[i: i + 1])
            h.wfile.flush()

    def _drop(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        self._head(h, 206, {"Content-Length": b - a + 1, "Content-Range": f"bytes {a}-{b}/{size}", "ETag": etag})
        h.wfile.write(data[a: a + max(1, (b - a + 1) // 2)])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(2)

    def _short(self, h, data, size, rng, etag):
        a, b = rng or (0, size - 1)
        self._body(h, data, a, a + max(0, (b - a) // 2), etag)

    def _junk(self, h, data, size, rng, etag):
        self._ok(h, data, size, rng, etag)
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\njunk!garbage")

    def _429(self, h, data, size, rng, etag):
        self._head(h, 429, {"Content-Length": 0, "Retry-After": 1})

    def _503(self, h, data, size, rng, etag):
        self._head(h, 503, {"Content-Length": 0})

    def _redirect_loop(self, h, data, size, rng, etag):
        self._head(h, 302, {"Content-Length": 0, "Location": h.path})
