"""A Hugging Face hub on 127.0.0.1, for the hub tests and bench/bench_hub.py.

``with HubEmulator({"org/m": {"step0": folder0, "step10": folder1}}) as hub:`` serves, from a
thread, what ``huggingface_hub`` and this package ask a hub for (point ``HF_ENDPOINT`` at
``hub.endpoint``):

- ``GET /api/models/{repo}/revision/{rev}[?blobs=true]``: the revision's commit and files (with
  sizes, blob ids and LFS sha256 when ``blobs`` is asked for);
- ``GET /api/models/{repo}/refs``: every revision as a branch (``main`` too: the last one);
- ``GET /api/models/{repo}/tree/{rev}``: the file listing (what ``snapshot_download`` reads);
- ``HEAD|GET /{repo}/resolve/{rev}/{file}``: small files (``config.json``, indexes) answered
  directly; LFS files (``*.safetensors``, ``*.bin``) by a ``302`` to a CDN path, with the
  hub's ``X-Linked-Etag``, ``X-Linked-Size`` and ``X-Repo-Commit`` headers, as the hub does;
- ``GET /cdn/{sha256}?expires=T`` on another host (127.0.0.2, as the hub's CDN is not the
  hub): the file's bytes, honouring ``Range``; not rate-limited; an expired URL (``cdn_ttl``
  seconds after its resolve) answers ``403``.

A rate limiter (``limits={"api": (quota, window_s), "resolvers": (quota, window_s)}``) counts
each bucket in fixed windows, puts the hub's ``RateLimit``/``RateLimit-Policy`` headers on its
replies and answers ``429`` with ``Retry-After`` once a bucket is spent. It counts what it
serves (:attr:`api`, :attr:`resolves`, :attr:`cdn`, :attr:`bytes_served`, :attr:`n_429`) and
can shape the link (``latency`` per request, one ``bandwidth`` cap shared by all connections).
Revisions whose folders hold the same bytes get the same blob ids and LFS hashes (as on the hub).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from _http_test_server import RANGE as _RANGE, Link, serving, stop

LFS_SUFFIXES = (".safetensors", ".bin")


def _hashes(p: Path) -> tuple[int, str, str]:
    """(size, git blob id, sha256) of a file, read in pieces."""
    size = p.stat().st_size
    sha1, sha256 = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            sha1.update(chunk)
            sha256.update(chunk)
    return size, sha1.hexdigest(), sha256.hexdigest()


class HubEmulator:
    def __init__(self, repos: dict, *, limits: dict | None = None, latency: float = 0.0,
                 bandwidth: float | None = None, cdn_ttl: float = 3600.0):
        self.files: dict = {}  # (repo, commit) -> {name: (path, size, blob_id, sha256 or None)}
        self.branches: dict = {}  # repo -> {name: commit}
        self.blobs: dict = {}  # sha256 -> path
        for repo, revs in repos.items():
            self.branches[repo] = {}
            for rev, folder in revs.items():
                entries = {}
                for p in sorted(x for x in Path(folder).iterdir() if x.is_file()):
                    size, blob, sha = _hashes(p)
                    lfs = p.name.endswith(LFS_SUFFIXES)
                    entries[p.name] = (p, size, blob, sha if lfs else None)
                    if lfs:
                        self.blobs[sha] = p
                commit = hashlib.sha1(f"{repo}\0{rev}\0".encode() + json.dumps(
                    sorted((n, e[2]) for n, e in entries.items())).encode()).hexdigest()
                self.files[(repo, commit)] = entries
                self.branches[repo][rev] = commit
            self.branches[repo].setdefault("main", commit)
        self.limits = dict(limits or {})
        self.latency, self.bandwidth, self.cdn_ttl = latency, bandwidth, cdn_ttl
        self._lock = threading.Lock()
        self._windows: dict = {}  # bucket -> [window start, used]
        self._link = Link(bandwidth)
        self.reset()
        self._httpd, hub_thread = serving("127.0.0.1", self._serve)
        self._cdn_httpd, cdn_thread = serving("127.0.0.2", self._serve)  # another host, as the hub's CDN is
        self._threads = [hub_thread, cdn_thread]

    # ------------------------------------------------------------------ bookkeeping
    def reset(self) -> None:
        with self._lock:
            self.api: list = []  # paths of API calls answered (not 429s)
            self.resolves: list = []  # (commit-or-rev, file) of resolves answered
            self.cdn = 0  # CDN requests
            self.bytes_served = 0  # body bytes of every reply
            self.api_bytes = 0  # of which the API's (JSON metadata)
            self.n_429 = 0
            self.auth: dict = {"hub": set(), "cdn": set()}  # Authorization headers seen, by host

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def commit(self, repo: str, rev: str) -> str:
        return self.branches[repo][rev]

    @property
    def cdn_endpoint(self) -> str:
        return f"http://127.0.0.2:{self._cdn_httpd.server_address[1]}"

    def __enter__(self) -> HubEmulator:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        for srv, t in zip((self._httpd, self._cdn_httpd), self._threads):
            stop(srv, t)

    # ------------------------------------------------------------------ rate limits
    def _limit(self, bucket: str) -> tuple[bool, dict]:
        """(allowed, headers) for one request in ``bucket``."""
        if bucket not in self.limits:
            return True, {}
        q, w = self.limits[bucket]
        with self._lock:
            now = time.monotonic()
            win = self._windows.setdefault(bucket, [now, 0])
            if now - win[0] >= w:
                win[0], win[1] = now, 0
            reset = max(1, math.ceil(win[0] + w - now))
            ok = win[1] < q
            if ok:
                win[1] += 1
            else:
                self.n_429 += 1
        h = {"RateLimit": f'"{bucket}";r={max(q - win[1], 0)};t={reset}',
             "RateLimit-Policy": f'"fixed window";"{bucket}";q={q};w={w}'}
        if not ok:
            h["Retry-After"] = str(reset)
        return ok, h

    # ------------------------------------------------------------------ serving
    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        if self.latency:
            time.sleep(self.latency)
        parts = urlsplit(h.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        cdn = h.server is self._cdn_httpd
        with self._lock:
            self.auth["cdn" if cdn else "hub"].add(h.headers.get("Authorization"))
        if cdn != path.startswith("/cdn/"):  # the CDN serves only /cdn/, the hub everything else
            return self._reply(h, 404, b"", {}, head)
        if path.startswith("/api/models/"):
            return self._api(h, path[len("/api/models/"):], query)
        if path.startswith("/cdn/"):
            return self._cdn(h, path[len("/cdn/"):], query, head)
        m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            return self._resolve(h, m.group(1), m.group(2), m.group(3), head)
        self._reply(h, 404, b"", {}, head)

    def _reply(self, h, code: int, body: bytes, headers: dict, head: bool = False) -> None:
        if h.path.startswith("/api/") and not head:
            with self._lock:
                self.api_bytes += len(body)
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if not head and body:
            self._send(h, body)

    def _send(self, h, body: bytes) -> None:
        for i in range(0, len(body), 1 << 16):
            chunk = body[i: i + (1 << 16)]
            self._link.pace(len(chunk))
            try:
                h.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
            with self._lock:
                self.bytes_served += len(chunk)

    def _revision(self, repo: str, rev: str):
        commit = self.branches.get(repo, {}).get(rev, rev)
        return commit, self.files.get((repo, commit))

    def _api(self, h, rest: str, query: dict) -> None:
        ok, limit_headers = self._limit("api")
        if not ok:
            return self._reply(h, 429, b'{"error": "rate limited"}', limit_headers)
        m = re.match(r"^([^/]+/[^/]+)/(revision|tree|refs)(?:/([^/]+))?(?:/.*)?$", rest)
        if m is None or m.group(1) not in self.branches:
            return self._reply(h, 404, b'{"error": "Repository not found"}',
                               {**limit_headers, "X-Error-Code": "RepoNotFound"})
        repo, kind, rev = m.group(1), m.group(2), m.group(3)
        with self._lock:
            self.api.append(f"{kind}/{rev or ''}")
        if kind == "refs":
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in self.branches[repo].items()]
            body = {"branches": branches, "converts": [], "tags": [], "pullRequests": []}
            return self._reply(h, 200, json.dumps(body).encode(), {**limit_headers, "Content-Type": "application/json"})
        commit, files = self._revision(repo, rev)
        if files is None:
            return self._reply(h, 404, b'{"error": "Revision not found"}',
                               {**limit_headers, "X-Error-Code": "RevisionNotFound"})
        if kind == "tree":
            body = [{"type": "file", "path": n, "size": s, "oid": b,
                     **({"lfs": {"oid": sha, "size": s, "pointerSize": 134}} if sha else {})}
                    for n, (_, s, b, sha) in files.items()]
        else:
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            sib = [{"rfilename": n, **({"size": s, "blobId": b} if blobs else {}),
                    **({"lfs": {"sha256": sha, "size": s, "pointerSize": 134}} if blobs and sha else {})}
                   for n, (_, s, b, sha) in files.items()]
            body = {"id": repo, "modelId": repo, "sha": commit, "siblings": sib, "private": False}
        self._reply(h, 200, json.dumps(body).encode(), {**limit_headers, "Content-Type": "application/json"})

    def _resolve(self, h, repo: str, rev: str, name: str, head: bool) -> None:
        ok, limit_headers = self._limit("resolvers")
        if not ok:
            return self._reply(h, 429, b"rate limited", limit_headers, head)
        commit, files = self._revision(repo, rev)
        entry = None if files is None else files.get(name)
        if entry is None:
            return self._reply(h, 404, b"Entry not found", {**limit_headers, "X-Error-Code": "EntryNotFound"}, head)
        with self._lock:
            self.resolves.append((rev, name))
        path, size, blob, sha = entry
        common = {**limit_headers, "X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if sha is None:  # a small git file: served here
            return self._data(h, path, {**common, "ETag": f'"{blob}"'}, head)
        loc = f"{self.cdn_endpoint}/cdn/{sha}?expires={time.time() + self.cdn_ttl:.3f}"
        self._reply(h, 302, b"", {**common, "Location": loc, "ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"',
                                  "X-Linked-Size": str(size)}, head)

    def _cdn(self, h, sha: str, query: dict, head: bool) -> None:
        with self._lock:
            self.cdn += 1
        p = self.blobs.get(sha)
        if p is None:
            return self._reply(h, 404, b"", {}, head)
        if float(query.get("expires", ["0"])[0]) < time.time():
            return self._reply(h, 403, b"<Error>Request has expired</Error>", {}, head)
        self._data(h, p, {"ETag": f'"{sha}"', "Accept-Ranges": "bytes"}, head)

    def _data(self, h, path: Path, headers: dict, head: bool) -> None:
        size = path.stat().st_size
        m = _RANGE.match(h.headers.get("Range", ""))
        a, b, code = 0, size - 1, 200
        if m is not None and not head:
            a, code = int(m.group(1)), 206
            b = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            if a >= size or b < a:
                return self._reply(h, 416, b"", {**headers, "Content-Range": f"bytes */{size}"})
            headers = {**headers, "Content-Range": f"bytes {a}-{b}/{size}"}
        h.send_response(code)
        h.send_header("Content-Length", str(b - a + 1 if size else 0))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if head:
            return
        with open(path, "rb") as fh:
            fh.seek(a)
            left = b - a + 1
            while left > 0:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    return
                self._send(h, chunk)
                left -= len(chunk)
