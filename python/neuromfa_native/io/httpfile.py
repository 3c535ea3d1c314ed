"""One file on an HTTP(S) server, read by checked range requests through the transport
(:mod:`.http`): the reply checks, the file's pinned version, and the remembered redirect (a hub
``/resolve/`` URL's CDN location). See :mod:`.http` for the guarantees.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional
from urllib.parse import urljoin, urlsplit

from .http import MAX_ERROR_BODY, MAX_REDIRECTS, FileChangedError, Reply, Transport, TransientError, transport

__all__ = ["HttpFile", "Pin", "content_range"]

# ASCII numbers of at most 20 digits (2**64 has 20): a longer one is malformed, not a Python
# int-from-string limit error that names no file
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,20})-([0-9]{1,20})/([0-9]{1,20}|\*)$")
_SIZE = re.compile(r"[0-9]{1,20}")


class Pin:
    """The version of one file a run reads: its size and the first validator the server gave
    (``ETag``, else ``Last-Modified``); every later reply must carry the same."""

    def __init__(self, size: Optional[int] = None, etag: Optional[str] = None):
        self.size, self.etag = size, etag
        self.modified: Optional[str] = None
        self._lock = threading.Lock()

    def if_range(self) -> Optional[str]:
        return self.etag if self.etag and not self.etag.startswith("W/") else None

    def check(self, name: str, headers: Mapping[str, str]) -> None:
        etag, modified = headers.get("etag"), headers.get("last-modified")
        with self._lock:
            if self.etag is None and self.modified is None:
                self.etag, self.modified = etag, (None if etag else modified)
                return
            if (self.etag is not None and etag is not None and etag != self.etag) or (
                    self.etag is None and self.modified is not None and modified not in (None, self.modified)):
                raise FileChangedError(f"{name}: the file changed on the server during the run (ETag "
                                       f"{self.etag or self.modified} became {etag or modified}); rerun to read "
                                       "the new version from the start")


def content_range(name: str, headers: Mapping[str, str]) -> tuple[int, int, Optional[int]]:
    m = _CONTENT_RANGE.match(headers.get("content-range", "").strip())
    if m is None:
        raise ValueError(f"{name}: a 206 reply without a valid Content-Range "
                         f"({headers.get('content-range')!r}); refusing bytes of unknown position")
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)) + 1, total


class _Expired(Exception):
    """A remembered redirect target answered 403/410 (an expired signed URL)."""


class HttpFile:
    """One file on an HTTP(S) server, read by checked range requests (see the module docs).

    ``origin`` is the URL asked first (a hub ``/resolve/`` URL, or a plain URL); the URL it
    redirects to is remembered (:attr:`location`) and used by every later read: one request to
    the origin per file, however many ranges follow (concurrent first reads wait for the one
    that resolves). ``headers`` (e.g. ``Authorization``) go to the origin's host only.
    ``fetch(start, end)`` returns the bytes from ``start``, at most ``end - start`` of them
    (fewer when the server answered short; the caller continues)."""

    def __init__(self, origin: str, *, name: Optional[str] = None, size: Optional[int] = None,
                 headers: Optional[Mapping[str, str]] = None, what: str = "server",
                 client: Optional[Transport] = None):
        self.origin, self.name = origin, name or origin
        self.pin = Pin(size)
        self.headers = dict(headers or {})
        self.what = what
        self.client = client or transport()
        self.location: Optional[str] = None  # where the data is read from, once known
        self.resolves = 0  # requests sent to the origin
        self.tally = [0, 0]  # requests and body bytes of this file, counted by the transport
        self._lock = threading.Lock()
        self.info: dict[str, Any] = {}  # headers of the origin's reply (ETag, X-Linked-Etag, ...)

    @property
    def size(self) -> Optional[int]:
        return self.pin.size

    def _headers_for(self, url: str) -> dict:
        same = urlsplit(url).netloc == urlsplit(self.origin).netloc
        return dict(self.headers) if same else {}

    # ---------------------------------------------------------------- reading
    def fetch(self, start: int, end: int) -> bytes | bytearray:
        """Bytes from ``start`` (at most ``end - start``), by one checked range request; an
        expired redirect target is resolved again (once per read)."""
        for _ in range(2):
            loc = self.location
            try:  # the origin's redirect target may be refused too (then resolved once more)
                if loc is None:
                    with self._lock:
                        if self.location is None:
                            return self._get(self.origin, "GET", start, end)
                        loc = self.location
                return self._get(loc, "GET", start, end)
            except _Expired:
                with self._lock:
                    if self.location == loc:
                        self.location = None
        raise ValueError(f"{self.name}: the server refused the file's location twice (HTTP 403/410)")

    def head(self) -> None:
        """Learn the size and validator with a ``HEAD`` (redirects followed); 404: not found."""
        with self._lock:
            self._retry(lambda: self._get(self.location or self.origin, "HEAD", 0, 0))
        self._size_from_info()

    def exists(self) -> bool:
        """A ``HEAD``: True (size and validator learnt), or False on a 404."""
        try:
            with self._lock:
                self._retry(lambda: self._get(self.location or self.origin, "HEAD", 0, 0, missing_ok=True))
        except _NotFound:
            return False
        self._size_from_info()
        return True

    def _size_from_info(self) -> None:
        size = self.info.get("x-linked-size") or self.info.get("content-length")
        if self.pin.size is None:
            if size is None or not _SIZE.fullmatch(str(size)):
                raise ValueError(f"{self.name}: the server does not say the file's size (no Content-Length); "
                                 "range reads need it")
            self.pin.size = int(size)

    def read_small(self, cap: int) -> bytes | bytearray | None:
        """The whole file (a config or an index), at most ``cap`` bytes; None if not found."""
        try:
            with self._lock:
                return self._retry(lambda: self._get(self.location or self.origin, "SMALL", 0, cap, missing_ok=True))
        except _NotFound:
            return None

    def _get(self, url: str, method: str, start: int, end: int, missing_ok: bool = False) -> bytes | bytearray:
        """One read from ``url``, following redirects (the first one from the origin is
        remembered); HEAD and SMALL (a whole small file) are retried here, GET by the caller."""
        for _ in range(MAX_REDIRECTS + 1):
            h = self._headers_for(url)
            if method == "GET":
                h["Range"] = f"bytes={start}-{end - 1}"
                validator = self.pin.if_range()
                if validator:
                    h["If-Range"] = validator

                def accept(status: int, headers: Mapping[str, str], a: int = start, b: int = end) -> int:
                    return self._accept(status, headers, a, b)

                r = self.client.exchange("GET", url, h, cap=end - start, what=self.what, accept=accept,
                                         tally=self.tally)
            else:
                r = self.client.exchange("HEAD" if method == "HEAD" else "GET", url, h,
                                         cap=end if method == "SMALL" else 0, what=self.what, tally=self.tally)
            if url == self.origin:
                self.resolves += 1
                self.info.update(r.headers)  # the hub's X-Linked-Etag / X-Linked-Size ride on the redirect
            if r.status in (301, 302, 303, 307, 308):
                loc = r.headers.get("location")
                if not loc:
                    raise ValueError(f"{self.name}: a {r.status} redirect without a Location")
                url = urljoin(url, loc)
                continue
            if r.status in (403, 410) and url != self.origin and method == "GET":
                raise _Expired()  # HEAD and SMALL: the refusal below
            if r.status == 404 and missing_ok:
                raise _NotFound()
            self._raise_for(r)
            if method == "SMALL" and r.status != 200:
                raise ValueError(f"{self.name}: a whole file was asked for and HTTP {r.status} came back")
            self.pin.check(self.name, r.headers)
            self.location = url
            return r.body
        raise ValueError(f"{self.name}: more than {MAX_REDIRECTS} redirects")

    def _accept(self, status: int, headers: Mapping[str, str], start: int, end: int) -> int:
        """The cap of a range reply's body, or an error before reading it."""
        if status == 206:
            a, b, total = content_range(self.name, headers)
            if a != start or b > end or b <= a:
                raise ValueError(f"{self.name}: asked for bytes [{start}, {end}) and the server answered bytes "
                                 f"[{a}, {b}); refusing an answer that is not the request")
            size = self.pin.size
            if total is not None and size is not None and total != size:
                raise FileChangedError(f"{self.name}: the server now says the file has {total} bytes, not "
                                       f"{size}: the file changed on the server during the run")
            if total is not None and size is None:
                self.pin.size = total
            return b - a
        if status == 200:
            size = self.pin.size
            if start == 0 and size is not None and end == size:
                return size
            if self.pin.if_range() is not None and headers.get("etag") not in (None, self.pin.etag):
                raise FileChangedError(f"{self.name}: the file changed on the server during the run (a whole "
                                       f"new file answered a range request for ETag {self.pin.etag})")
            raise ValueError(f"{self.name}: asked for bytes [{start}, {end}) and received the whole file (HTTP "
                             "200): the server ignores Range requests; download the file and analyse it locally")
        return MAX_ERROR_BODY

    def _raise_for(self, r: Reply) -> None:
        if r.status in (200, 206):
            return
        if r.status == 404:
            raise ValueError(f"{self.name}: not found (HTTP 404)")
        if r.status in (401, 403):
            hint = "; a gated or private repository needs a token (HF_TOKEN)" if "/resolve/" in self.origin else ""
            raise ValueError(f"{self.name}: access refused (HTTP {r.status}){hint}")
        if r.status == 416:
            raise ValueError(f"{self.name}: range not satisfiable (HTTP 416): the file is shorter than its "
                             "header says")
        if r.status >= 500 or r.status == 408:
            raise TransientError(f"HTTP {r.status}")
        raise ValueError(f"{self.name}: unexpected HTTP {r.status}")

    def _retry(self, fn: Callable[[], Any]) -> Any:
        last: Optional[Exception] = None
        for i in range(3):
            try:
                return fn()
            except TransientError as exc:
                last = exc
                time.sleep(0.05 * 2 ** i)
        raise ValueError(f"{self.name}: failed after 3 tries: {last}")


class _NotFound(Exception):
    pass
