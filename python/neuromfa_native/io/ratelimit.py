"""Rate limits of HTTP servers (the Hugging Face hub's), waited out and announced.

The hub counts requests per IP over 5-minute windows in buckets (``"resolvers"``: every
``/resolve/`` URL; ``"api"``: ``/api/...``) and says where a client stands on each reply::

    RateLimit: "resolvers";r=2999;t=185
    RateLimit-Policy: "fixed window";"resolvers";q=3000;w=300

and answers ``429`` with ``Retry-After`` when a bucket is spent. :class:`RateLimits` keeps
what the replies said per (host, bucket); :meth:`RateLimits.before` waits, before a request is
sent, while its bucket is down to a small reserve (:data:`RESERVE` of the quota, at least one
request, left to other clients on the same IP) until the window resets; a ``429`` is waited out
for its ``Retry-After`` (:meth:`RateLimits.retry_after`). Every wait is announced (``"hub rate
limit: waiting 41 s"``) through :func:`status_reporter`, which the runner points at its
progress line; otherwise to the ``neuromfa_native`` logger.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

__all__ = ["RateLimits", "announce", "policy", "status_reporter"]

MAX_WAIT = 900.0  # seconds: the longest single rate-limit wait (a larger Retry-After is capped)
RESERVE = 0.02  # fraction of a rate-limit bucket left unspent for other clients of the same IP
# numbers of at most 12 ASCII digits: a longer one (a broken or hostile server) leaves the header
# unread rather than overflow the clock or Python's int-from-string limit
_RATELIMIT = re.compile(r'"(?P<bucket>[\w-]+)"\s*;\s*r\s*=\s*(?P<r>[0-9]{1,12})\s*;\s*t\s*=\s*(?P<t>[0-9]{1,12})(?![0-9])')
_POLICY = re.compile(r"q\s*=\s*(?P<q>[0-9]{1,12})(?![0-9]).*?w\s*=\s*(?P<w>[0-9]{1,12})(?![0-9])")
_SECONDS = re.compile(r"[0-9]+")  # ASCII digits only ("²".isdigit() is True, float("²") fails)
log = logging.getLogger("neuromfa_native")


_reporter: Optional[Callable[[Optional[str]], None]] = None


@contextmanager
def status_reporter(fn: Callable[[Optional[str]], None]) -> Iterator[None]:
    """Route the transport's wait messages (``"hub rate limit: waiting 41 s"``, then ``None``
    when the wait is over) to ``fn`` while the block runs (the runner's progress line);
    outside such a block they go to the ``neuromfa_native`` logger as warnings."""
    global _reporter
    old, _reporter = _reporter, fn
    try:
        yield
    finally:
        _reporter = old


def announce(msg: Optional[str]) -> None:
    fn = _reporter
    if fn is not None:
        fn(msg)
    elif msg:
        log.warning("neuromfa: %s", msg)


def policy(headers: Mapping[str, str]) -> Optional[tuple[int, float]]:
    """``(quota, window seconds)`` of a ``RateLimit-Policy`` header, or None."""
    p = _POLICY.search(headers.get("ratelimit-policy", ""))
    return None if p is None else (int(p.group("q")), float(p.group("w")))


class _Bucket:
    __slots__ = ("remaining", "reset_at", "quota")

    def __init__(self) -> None:
        self.remaining: Optional[int] = None
        self.reset_at = 0.0
        self.quota: Optional[int] = None


class RateLimits:
    """What the servers said about their rate limits, per (host, bucket); thread-safe."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, all threads together
        self.n_429 = 0

    def observe(self, host: str, headers: Mapping[str, str]) -> None:
        m = _RATELIMIT.search(headers.get("ratelimit", ""))
        if m is None:
            return
        p = policy(headers)
        with self._lock:
            b = self._buckets.setdefault((host, m.group("bucket")), _Bucket())
            b.remaining = int(m.group("r"))
            b.reset_at = time.monotonic() + int(m.group("t"))
            if p is not None:
                b.quota = p[0]

    def before(self, host: str, bucket: Optional[str], what: str) -> None:
        """Wait while ``bucket`` of ``host`` is (nearly) spent; then count one request in it."""
        if bucket is None:
            return
        while True:
            with self._lock:  # the bucket the server named ("resolvers" for "resolv", "api" for "api")
                name, b = next(((n, v) for (h, n), v in self._buckets.items() if h == host and n.startswith(bucket)),
                               (bucket, None))
                if b is None or b.remaining is None:
                    return
                now = time.monotonic()
                if now >= b.reset_at:
                    b.remaining = None  # a new window: unknown until the next reply says
                    return
                reserve = max(1, int(RESERVE * (b.quota or 0)))
                if b.remaining > reserve:
                    b.remaining -= 1
                    return
                wait = min(b.reset_at - now, MAX_WAIT)
            self.wait(wait, f"{what} rate limit ({name}): waiting {wait:.0f} s")

    def wait(self, seconds: float, msg: str) -> None:
        """Sleep ``seconds``, at most :data:`MAX_WAIT` (every caller checks again after it)."""
        seconds = min(max(seconds, 0.0), MAX_WAIT)
        announce(msg)
        time.sleep(seconds)
        with self._lock:
            self.waited += seconds
        announce(None)

    def retry_after(self, headers: Mapping[str, str]) -> float:
        """Seconds a ``429`` asks to wait: ``Retry-After`` (seconds or a date), else the
        ``RateLimit`` header's reset, else 10 s."""
        with self._lock:
            self.n_429 += 1
        ra = headers.get("retry-after", "").strip()
        if _SECONDS.fullmatch(ra):
            return min(float(ra), MAX_WAIT)
        if ra:
            import email.utils

            try:
                when = email.utils.parsedate_to_datetime(ra).timestamp()
                return min(max(when - time.time(), 1.0), MAX_WAIT)
            except (TypeError, ValueError, OverflowError):
                pass
        m = _RATELIMIT.search(headers.get("ratelimit", ""))
        return min(float(m.group("t")) + 1.0, MAX_WAIT) if m else 10.0
