"""HTTP(S) for remote checkpoints: exact byte ranges, checked, counted, capped and timed.

The transport of :mod:`.remote` for ``http://`` and ``https://`` URLs and for the Hugging Face
hub (:mod:`.hub`), written on the standard library's ``http.client`` (no read-ahead, no cache,
no dependency). What it guarantees, whatever the server does:

- **A reply is what was asked, or an error.** A range read accepts a ``206`` only when its
  ``Content-Range`` starts at the requested byte, ends inside the request and names the file's
  known size; a ``200`` only when the request was the whole file. A reply that starts elsewhere,
  or a ``200`` carrying a prefix of the file, is refused (``ValueError``), never used.
- **One version of a file per run.** The first reply's ``ETag`` (else ``Last-Modified``) pins
  the file (:class:`Pin`); a strong ETag is sent back as ``If-Range``. A reply with another
  validator, or a ``200`` to an ``If-Range`` request, is "the file changed on the server": an
  error, not a mix of two versions.
- **No reply takes more memory than it should.** Every body is read against a cap (a range:
  its length; a small file: its limit; an error or redirect: 64 kB), checked on
  ``Content-Length`` before reading and on the bytes while reading.
- **No reply takes unbounded time.** Connecting and each read wait at most :data:`TIMEOUT`
  seconds, and a whole exchange (headers and body) at most ``TIMEOUT + bytes / MIN_RATE``
  seconds: a server that trickles is cut off by a watchdog that closes the socket.
- **Bytes are counted where they arrive**: :attr:`Transport.bytes_received` counts body bytes
  read from sockets (what the server sent, every reply included), by host and kind.
- **Rate limits are waited out, not failed on.** A ``429`` is retried after its
  ``Retry-After`` (or the ``RateLimit`` header's reset), as often as it takes; ``RateLimit``
  headers (the hub's ``"resolvers";r=..;t=..``) are read, and a bucket about to be spent is
  waited for before sending. Each wait is announced through :func:`status_reporter`
  (``"hub rate limit: waiting 41 s"``), which the runner shows on its progress line.

Redirects are followed (at most 5) and remembered per file: a hub ``/resolve/`` answers ``302``
to a CDN URL, which later ranges use directly; a ``403``/``410`` from the remembered location
(an expired signed URL) goes back to the origin once. An ``Authorization`` header is sent only
to the origin's host. ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are honoured.
"""
from __future__ import annotations

import atexit
import heapq
import http.client
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Callable, NamedTuple, Optional
from urllib.parse import urlsplit

from .ratelimit import RateLimits

__all__ = ["FileChangedError", "Reply", "Transport", "TransientError", "transport"]

TIMEOUT = 30.0  # seconds: connecting, and waiting for any next byte
MIN_RATE = 32 * 1024  # bytes/s: a whole exchange may last TIMEOUT + its bytes / MIN_RATE
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 64 << 10  # bytes read of a reply that is not the data (an error, a redirect)


class TransientError(Exception):
    """A failed exchange worth retrying: a dropped connection, a timeout, a 5xx."""


class _Stale(Exception):
    """A pooled keep-alive connection that the server had closed (not the server's fault)."""


class FileChangedError(ValueError):
    """The file was replaced on the server during the run (another ETag, or a ``200`` to an
    ``If-Range`` request)."""


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes | bytearray
    url: str


# ----------------------------------------------------------------------------- watchdog
class _Watchdog:
    """One thread that shuts down the sockets of exchanges past their deadline (a trickling
    server cannot hold a read for longer than its deadline)."""

    def __init__(self) -> None:
        self._heap: list = []
        self._cv = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._n = 0

    def arm(self, deadline: float, conn: http.client.HTTPConnection) -> list:
        token = [deadline, False, conn]  # [deadline, fired, conn]; conn None once disarmed
        with self._cv:
            self._n += 1
            heapq.heappush(self._heap, (deadline, self._n, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="neuromfa-http-watchdog", daemon=True)
                self._thread.start()
            self._cv.notify()
        return token

    def disarm(self, token: list) -> bool:
        """Whether the deadline had passed (the socket was shut down)."""
        with self._cv:
            token[2] = None
            return bool(token[1])

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait(60.0)
                    if not self._heap:
                        self._thread = None
                        return
                deadline, _, token = self._heap[0]
                now = time.monotonic()
                if token[2] is not None and deadline > now:
                    self._cv.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                conn = token[2]
                if conn is None:
                    continue
                token[1] = True
            sock = getattr(conn, "sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


_WATCHDOG = _Watchdog()


# ----------------------------------------------------------------------------- transport
def _bucket_of(path: str) -> Optional[str]:
    """The start of the name of the rate-limit bucket a hub request counts in (None: not limited)."""
    if "/resolve/" in path:
        return "resolv"
    if path.startswith("/api/"):
        return "api"
    return None


class Transport:
    """Pooled keep-alive connections, counted bytes, caps, deadlines and rate limits (see the
    module docs). One per process (:func:`transport`); thread-safe."""

    def __init__(self) -> None:
        self._idle: dict[tuple, list] = {}
        self._lock = threading.Lock()
        self.limits = RateLimits()
        self.bytes_received = 0
        self.requests = 0
        self.by_kind: dict[str, list] = {}  # kind -> [requests, bytes]
        self._ssl: Optional[ssl.SSLContext] = None

    # ---------------------------------------------------------------- connections
    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi  # what huggingface_hub's client uses; else the system's store
                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                self._ssl = ssl.create_default_context()
        return self._ssl

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        from urllib.request import getproxies, proxy_bypass

        conn: http.client.HTTPConnection

        proxy = None if proxy_bypass(host) else getproxies().get(scheme)
        if scheme == "https":
            if proxy:
                p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
                conn = http.client.HTTPSConnection(p.hostname or "", p.port or 80, timeout=TIMEOUT,
                                                   context=self._context())
                conn.set_tunnel(host, port)
                return conn
            return http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=self._context())
        if proxy:
            p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            conn = http.client.HTTPConnection(p.hostname or "", p.port or 80, timeout=TIMEOUT)
            conn._neuromfa_absolute = True  # type: ignore[attr-defined]  # request line takes the absolute URL
            return conn
        return http.client.HTTPConnection(host, port, timeout=TIMEOUT)

    def _take(self, key: tuple) -> tuple[http.client.HTTPConnection, bool]:
        """A pooled connection (and True), else a new one (and False). A pooled connection with
        anything to read before a request was sent (bytes the server added after its last
        answer, or its close) is dropped: it would be read as the next answer."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(*key), False
            sock = getattr(conn, "sock", None)
            try:
                ready = sock is None or bool(select.select([sock], [], [], 0)[0])
            except (OSError, ValueError):
                ready = True
            if not ready:
                return conn, True
            conn.close()

    def _give(self, key: tuple, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < 64:
                idle.append(conn)
                return
        conn.close()

    def _count(self, kind: str, nbytes: int, request: bool = False, tally: Optional[list] = None) -> None:
        with self._lock:
            row = self.by_kind.setdefault(kind, [0, 0])
            row[1] += nbytes
            self.bytes_received += nbytes
            if tally is not None:
                tally[1] += nbytes
                tally[0] += request
            if request:
                row[0] += 1
                self.requests += 1

    def close(self) -> None:
        """Close the idle pooled connections (at exit; the pool refills on the next request)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for c in conns:
                c.close()

    def counts(self) -> dict:
        """``{kind: (requests, bytes)}`` so far (kinds: ``resolvers``, ``api``, ``data``)."""
        with self._lock:
            return {k: (v[0], v[1]) for k, v in self.by_kind.items()}

    # ---------------------------------------------------------------- one exchange
    def exchange(self, method: str, url: str, headers: Optional[Mapping[str, str]] = None, *, cap: int,
                 accept: Optional[Callable[[int, Mapping[str, str]], int]] = None, what: str = "server",
                 tally: Optional[list] = None) -> Reply:
        """One request, its reply read against ``cap`` bytes (or what ``accept(status,
        headers)`` returns: it may raise to refuse a reply before its body is read). ``429``
        is waited out and sent again; anything else is returned or raised: a network failure,
        a timeout or a ``5xx`` as :class:`TransientError`. No redirect is followed. ``tally``
        (``[requests, bytes]``) counts this exchange's request and body bytes too."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url}: not an http(s) URL")
        host = parts.netloc  # rate limits are per server (host and port)
        key = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        bucket = _bucket_of(parts.path)
        kind = {"resolv": "resolvers", "api": "api"}.get(bucket or "", "data")
        while True:
            self.limits.before(host, bucket, what)
            try:
                reply = self._once(method, url, key, target, dict(headers or {}), cap, accept, kind, tally)
            except _Stale:  # a pooled connection the server had closed: once more on a new one
                reply = self._once(method, url, key, target, dict(headers or {}), cap, accept, kind, tally,
                                   fresh=True)
            self.limits.observe(host, reply.headers)
            if reply.status != 429:
                return reply
            wait = self.limits.retry_after(reply.headers)
            self.limits.wait(wait, f"{what} rate limit: waiting {wait:.0f} s")

    def _once(self, method: str, url: str, key: tuple, target: str, headers: dict, cap: int,
              accept: Optional[Callable], kind: str, tally: Optional[list], fresh: bool = False) -> Reply:
        conn, reused = (self._connect(*key), False) if fresh else self._take(key)
        if getattr(conn, "_neuromfa_absolute", False):
            target = url
        headers.setdefault("Accept-Encoding", "identity")
        allowed = TIMEOUT + cap / MIN_RATE
        token = _WATCHDOG.arm(time.monotonic() + allowed, conn)
        reusable = False
        resp: Optional[http.client.HTTPResponse] = None
        try:
            try:
                conn.request(method, target, headers=headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                if reused and isinstance(exc, (ConnectionError, http.client.RemoteDisconnected)):
                    raise _Stale() from None
                self._count(kind, 0, request=True, tally=tally)
                raise TransientError(f"{type(exc).__name__}: {exc}") from None
            status = resp.status
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            self._count(kind, 0, request=True, tally=tally)
            limit = MAX_ERROR_BODY
            if accept is not None:
                try:
                    limit = accept(status, hdrs)
                except ValueError:
                    if reused:  # perhaps bytes a server left on a kept-alive connection: once more, fresh
                        raise _Stale() from None
                    raise
            elif status in (200, 206):
                limit = cap
            body, complete = self._read_body(resp, limit, kind, method, status, url, tally)
            reusable = complete and not resp.will_close
            if reusable:
                resp.close()  # read whole: the connection takes the next request
            return Reply(status, hdrs, body, url)
        except (TransientError, _Stale):
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        finally:
            fired = _WATCHDOG.disarm(token)
            if reusable and not fired:
                self._give(key, conn)
            else:
                if resp is not None:
                    resp.close()  # a reply left unread may hold the socket (Connection: close)
                conn.close()
            if fired:
                raise TransientError(f"no complete answer within {allowed:.0f} s (the server is too slow)")

    def _read_body(self, resp: http.client.HTTPResponse, cap: int, kind: str, method: str, status: int,
                   url: str, tally: Optional[list]) -> tuple[bytearray, bool]:
        """The body, at most ``cap`` bytes (more, announced or sent, is an error for a data
        reply; an error reply is cut at its cap). Returns (body, whether it was read whole)."""
        data_reply = status in (200, 206)
        if method == "HEAD" or status in (204, 304):
            return bytearray(), True
        n = resp.length
        if n is not None and n > cap:
            if data_reply:
                raise ValueError(f"{url}: the server announces {n} bytes where at most {cap} were asked for")
            return bytearray(), False
        out = bytearray()
        while True:
            chunk = resp.read1(min(1 << 20, cap + 1 - len(out)))
            if not chunk:
                break
            out += chunk
            self._count(kind, len(chunk), tally=tally)
            if len(out) > cap:
                if data_reply:
                    raise ValueError(f"{url}: the server sends more than the {cap} bytes asked for")
                return out[:cap], False
        if n is not None and len(out) < n:
            raise TransientError(f"connection closed after {len(out)} of {n} bytes")
        return out, True


_TRANSPORT: Optional[Transport] = None
_TRANSPORT_LOCK = threading.Lock()


def transport() -> Transport:
    """The process's transport (connections, counts and rate limits are shared by all files)."""
    global _TRANSPORT
    with _TRANSPORT_LOCK:
        if _TRANSPORT is None:
            _TRANSPORT = Transport()
            atexit.register(_TRANSPORT.close)
        return _TRANSPORT
