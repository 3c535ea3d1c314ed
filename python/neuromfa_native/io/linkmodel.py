"""What a request and a byte cost on a link, measured on the requests made on it.

:class:`LinkModel` is what :class:`~.remote.RemoteFile` plans its range reads with: the
rows asked for, and the gaps between them merged, smallest first, while a batch is bound by its
requests rather than by its bytes (:meth:`~.remote.RemoteFile.plan_groups`). :func:`link_for`
keeps one model per server for the process, so a series measures its link once.
"""
from __future__ import annotations

import threading
from urllib.parse import urlsplit

__all__ = ["LinkModel", "link_for"]


class LinkModel:
    """Cost of requests on a link, from the requests made on it (thread-safe).

    A batch of ``n`` parallel requests moving ``b`` bytes is planned as taking
    ``max(n x per_request, b / bandwidth)`` seconds (:meth:`~.remote.RemoteFile.plan_groups`;
    the calibration reads the sum as an upper bound): ``per_request`` is the aggregate cost one more
    request adds to a batch on *this client* (the link's latency shared by the requests in
    flight, plus the client's and server's per-request work, which dominates on a Python HTTP
    client), ``bandwidth`` the aggregate rate. Both are measured: ``bandwidth`` on batches of
    large requests, ``per_request`` on batches of many small ones; until ``per_request`` is
    measured it is taken as ``latency / workers`` (latency: the fastest request seen)."""

    #: the weight of a request's cost in planning (1: the fastest plan by the model; less trades
    #: time for fewer bytes; 0: only the rows asked for, touching ranges joined)
    merge_factor = 1.0

    def __init__(self, latency: float | None = None, bandwidth: float | None = None,
                 per_request: float | None = None):
        self.latency = latency  # seconds of the fastest request seen (small ones measure latency)
        self.bandwidth = bandwidth  # bytes/s, aggregate, measured on a batch of large requests
        self.per_request = per_request  # seconds one request adds to a parallel batch
        self._lock = threading.Lock()

    def observe(self, nbytes: int, seconds: float) -> None:
        """One request: the fastest one seen is the latency estimate."""
        with self._lock:
            if self.latency is None or seconds < self.latency:
                self.latency = seconds

    def observe_batch(self, nbytes: int, seconds: float, n_requests: int = 1, workers: int = 32) -> None:
        """A batch of parallel requests. Large requests (>= 256 kB on average) measure the
        bandwidth (less the requests' own cost: ``n x per_request``, or before that is known one
        latency per wave of ``workers`` requests in flight); many small ones (>= 8) measure
        ``per_request`` (less the bytes' time; without a bandwidth yet, the whole time: an
        upper bound)."""
        with self._lock:
            if nbytes >= max(n_requests, 1) << 18:
                waves = -(-max(n_requests, 1) // max(workers, 1))
                own = (n_requests * self.per_request if self.per_request is not None
                       else waves * (self.latency or 0.0))
                if nbytes >= 1 << 20 and seconds > own:
                    self.bandwidth = nbytes / (seconds - own)
            elif n_requests >= 8:
                moving = nbytes / self.bandwidth if self.bandwidth else 0.0
                self.per_request = max(seconds - moving, 0.0) / n_requests

    def request_cost(self, workers: int = 1) -> float:
        """Seconds one more request adds to a batch with ``workers`` requests in flight (times
        :attr:`merge_factor`)."""
        if self.per_request is not None:
            return self.per_request * self.merge_factor
        return (self.latency or 0.0) / max(workers, 1) * self.merge_factor

    @property
    def calibrated(self) -> bool:
        return self.bandwidth is not None and self.per_request is not None


_LINKS: dict = {}
_LINKS_LOCK = threading.Lock()


def link_for(url: str) -> LinkModel:
    """The process's :class:`LinkModel` of the server a URL names (the hub's for ``hf://``):
    measured once, used by every checkpoint read from it."""
    if url.startswith("hf://"):
        from .hub import endpoint

        host = urlsplit(endpoint()).netloc
    else:
        host = urlsplit(url).netloc or url.split("://", 1)[0]
    with _LINKS_LOCK:
        return _LINKS.setdefault(host, LinkModel())
