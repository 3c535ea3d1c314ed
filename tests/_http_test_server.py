"""What the test HTTP servers (range_server, hub_emulator, hostile_server) share: a threading
HTTP/1.1 server with a backlog for a client's 32 parallel connections, a quiet handler that
passes every HEAD and GET to one function, its serving thread, the ``Range`` header's pattern,
and one bandwidth shared by all connections (:class:`Link`)."""
from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer as _Threading
from typing import Callable

RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class ThreadingHTTPServer(_Threading):
    request_queue_size = 128  # a client opens up to 32 connections at once (the default backlog is 5)
    daemon_threads = True


def serving(host: str, serve: Callable[[BaseHTTPRequestHandler, bool], None],
            gone: tuple = (BrokenPipeError, ConnectionResetError)) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A server on ``host`` (a free port) answering each HEAD and GET by ``serve(handler,
    head)``, quiet, a client gone mid-answer (``gone``) ignored; and its thread (not started)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle(self):
            try:
                super().handle()
            except gone:
                pass  # the client went away mid-answer: nothing to answer

        def do_HEAD(self):
            serve(self, True)

        def do_GET(self):
            serve(self, False)

    httpd = ThreadingHTTPServer((host, 0), Handler)
    return httpd, threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)


def stop(httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


class Link:
    """One link of ``bandwidth`` bytes/s (None: unlimited) shared by all connections: :meth:`pace`
    waits until ``n`` more bytes would have crossed it."""

    def __init__(self, bandwidth: float | None):
        self.bandwidth = bandwidth
        self._free_at = 0.0
        self._lock = threading.Lock()

    def pace(self, n: int) -> None:
        if not self.bandwidth:
            return
        with self._lock:
            start = max(time.perf_counter(), self._free_at)
            self._free_at = start + n / self.bandwidth
            wait = self._free_at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
