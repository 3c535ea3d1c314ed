"""Checkpoints read by byte range from anywhere fsspec reaches (SPEC 12).

A source ``"https://host/path/model-folder"``, ``"hf://org/name@rev"``, ``"file:///..."``,
``"s3://..."`` (any fsspec URL, of a weights file or of a model folder) becomes a
:class:`RemoteSource`. A folder is read by name, since HTTP has no listing:
``config.json`` (optional), then the first of ``model.safetensors.index.json``,
``model.safetensors``, ``pytorch_model.bin.index.json``, ``pytorch_model.bin`` that exists.

What is fetched: each weights file's header (safetensors: 8 bytes + the JSON header; torch
zip: the central directory, ``data.pkl`` and 30-byte local headers) and then only the byte
ranges of the rows the network asks for, never a tensor it does not use. Within one request
for rows (:meth:`RemoteFile.readinto_many`) the ranges are sorted and merged when the gap
between two costs less than a new request (``gap < latency x bandwidth / workers``: latency the
fastest request so far, bandwidth the aggregate rate of a batch of large requests; nothing is
merged until the bandwidth has been measured), the whole span is fetched instead when that is
cheaper still, and the pieces are fetched in parallel (a thread pool of 32). A fast local disk
has a latency near zero, so nothing is merged there.

Errors: a missing file is a ``ValueError`` naming the URL; a dropped connection or a short
read is retried (3 tries, only the missing bytes) and then a ``ValueError``; a server that
ignores ``Range`` (it sends more bytes than asked for) is a ``ValueError`` saying so. A read
never returns bytes it did not receive: no number is computed from a partial read.

Accounting: :attr:`RemoteSource.bytes_read` (all bytes received, headers included) and
:attr:`RemoteSource.size` (the checkpoint's weights files, from the server's metadata).

Fingerprints (:meth:`RemoteSource.fingerprint`): reading every byte of a remote checkpoint to
fingerprint it would defeat range reads, so a remote fingerprint is built from what the server
already says about each weights file plus what was read of it: a content hash where the server
gives one (the hub's LFS ``sha256``), else the URL with its ``ETag`` (or ``Last-Modified``)
and size, plus, per tensor, its name, dtype, shape and byte range in the file. What this can
and cannot see:

- two hub revisions whose weights files are byte-identical (same LFS sha256) get the same
  fingerprint: identical checkpoints (pythia's early steps) are detected without reading them;
- an ETag identifies one version of one URL (many servers derive it from the modification
  time and size, not the content), so with ETags only a rerun recognises the same checkpoint,
  while identical files at two URLs are *not* detected (never wrongly merged either);
- the same weights in a different container (safetensors vs ``.bin``, another shard split or
  header order) are not detected; a local copy of a remote checkpoint gets the local, byte-based
  fingerprint, which differs from the remote one;
- a server with neither a hash nor an ETag nor Last-Modified: the fingerprint falls back to
  reading the tensors (the byte-based one, as for local files).

fsspec (and aiohttp for HTTP) is needed only here; this module is imported only for URLs.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import numpy as np

from .ranged import RangedSource, RangedTensors, TensorEntry
from .._fs import parse_json
from .safetensors import MAX_HEADER, parse_header, parse_index
from .base import is_url

__all__ = ["RemoteFile", "RemoteSource", "is_url", "resolve_url"]

#: names tried, in order, when a URL names a folder
FOLDER_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                "pytorch_model.bin")
RETRIES = 3
MAX_WORKERS = 32


def _fsspec():
    try:
        import fsspec
    except ImportError:
        raise ValueError("reading a URL needs fsspec (pip install 'neuromfa-native[remote]'; "
                         "https:// also needs aiohttp)") from None
    return fsspec


class LinkModel:
    """Cost of requests on a link, from the requests made on it (thread-safe).

    A batch of ``n`` parallel requests moving ``b`` bytes is modelled as taking
    ``n x per_request + b / bandwidth`` seconds: ``per_request`` is the aggregate cost one more
    request adds to a batch on *this client* (the link's latency shared by the requests in
    flight, plus the client's and server's per-request work, which dominates on a Python HTTP
    client), ``bandwidth`` the aggregate rate. Both are measured: ``bandwidth`` on batches of
    large requests, ``per_request`` on batches of many small ones; until ``per_request`` is
    measured it is taken as ``latency / workers`` (latency: the fastest request seen)."""

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

    def observe_batch(self, nbytes: int, seconds: float, n_requests: int = 1) -> None:
        """A batch of parallel requests. Large requests (>= 256 kB on average) measure the
        bandwidth (less the requests' own cost); many small ones (>= 8) measure ``per_request``
        (less the bytes' time; without a bandwidth yet, the whole time: an upper bound)."""
        with self._lock:
            if nbytes >= max(n_requests, 1) << 18:
                own = n_requests * (self.per_request if self.per_request is not None else (self.latency or 0.0))
                if nbytes >= 1 << 20 and seconds > own:
                    self.bandwidth = nbytes / (seconds - own)
            elif n_requests >= 8:
                moving = nbytes / self.bandwidth if self.bandwidth else 0.0
                self.per_request = max(seconds - moving, 0.0) / n_requests

    def request_cost(self, workers: int = 1) -> float:
        """Seconds one more request adds to a batch with ``workers`` requests in flight."""
        if self.per_request is not None:
            return self.per_request
        return (self.latency or 0.0) / max(workers, 1)

    @property
    def calibrated(self) -> bool:
        return self.bandwidth is not None and self.per_request is not None

    def gap_bytes(self, workers: int = 1) -> int:
        """Bytes the link moves in the time one more request costs: a smaller gap between two
        ranges is cheaper to read through than to skip. 0 (merge nothing) until the bandwidth
        has been measured."""
        if self.bandwidth is None:
            return 0
        return int(self.request_cost(workers) * self.bandwidth)

    def cost(self, n_requests: int, nbytes: int, workers: int) -> float:
        """Seconds for ``n_requests`` requests (``workers`` in flight) moving ``nbytes`` in all."""
        return n_requests * self.request_cost(workers) + nbytes / (self.bandwidth or 100e6)


class RemoteFile:
    """A byte reader (see :mod:`.rangeio`) over one fsspec file, by range requests."""

    def __init__(self, fs: Any, path: str, url: str, info: Mapping[str, Any] | None = None,
                 link: LinkModel | None = None, workers: int = MAX_WORKERS):
        self.fs, self.path, self.name = fs, path, url
        try:
            self.info = dict(info if info is not None else fs.info(path))
        except FileNotFoundError:
            raise ValueError(f"{url}: not found") from None
        except Exception as exc:
            raise ValueError(f"{url}: could not get its size: {type(exc).__name__}: {exc}") from exc
        if self.info.get("size") is None:
            raise ValueError(f"{url}: the server does not say the file's size (no Content-Length); range reads need it")
        self.size = int(self.info["size"])
        self.link = link or LinkModel()
        self.workers = workers
        self.bytes_read = 0
        self.requests = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ identity
    def content_id(self) -> str | None:
        """A content hash (``sha256:...``) or a version of this URL (``etag:URL:...``), or None."""
        lfs = self.info.get("lfs")
        if isinstance(lfs, Mapping) and lfs.get("sha256"):
            return f"sha256:{lfs['sha256']}"
        for k in ("sha256", "checksum"):
            if self.info.get(k):
                return f"{k}:{self.info[k]}"
        for k in ("ETag", "etag", "Last-Modified", "mtime", "last_commit"):
            v = self.info.get(k)
            if v:
                return f"{k}:{self.name}:{v}:{self.size}"
        return None

    # ------------------------------------------------------------------ reading
    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, exactly. A short answer is continued from where it stopped;
        a failed request (dropped connection, timeout, 5xx) is retried; ``RETRIES`` failures
        in a row without progress are an error."""
        out = bytearray()
        fails, last = 0, None
        while len(out) < end - start:
            pos = start + len(out)
            t0 = time.perf_counter()
            try:
                got = self.fs.cat_file(self.path, start=pos, end=end)
            except FileNotFoundError:
                raise ValueError(f"{self.name}: not found (HTTP 404 or missing file)") from None
            except Exception as exc:  # dropped connection, timeout, 5xx: retry the missing part
                fails, last = fails + 1, exc
                if fails >= RETRIES:
                    break
                time.sleep(0.05 * 2**fails)
                continue
            dt = time.perf_counter() - t0
            with self._lock:
                self.bytes_read += len(got)
                self.requests += 1
            if len(got) > end - pos:
                raise ValueError(
                    f"{self.name}: asked for bytes [{pos}, {end}) and received {len(got)} bytes: the server "
                    "ignores Range requests; download the file and analyse it locally")
            if not got:
                fails, last = fails + 1, ValueError("empty answer")
                if fails >= RETRIES:
                    break
                continue
            fails = 0
            self.link.observe(len(got), dt)
            out += got
        else:
            return bytes(out)
        raise ValueError(f"{self.name}: reading bytes [{start}, {end}) failed after {RETRIES} tries: "
                         f"{type(last).__name__}: {last}")

    def plan(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """Merge sorted ``[start, end)`` ranges whose gap is cheaper to read than a new request;
        one covering range if that is cheaper still (by :meth:`LinkModel.cost`)."""
        if not ranges:
            return []
        gap = self.link.gap_bytes(self.workers)
        merged = [list(ranges[0])]
        for s, e in ranges[1:]:
            if s - merged[-1][1] <= gap:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out = [(s, e) for s, e in merged]
        whole = (out[0][0], max(e for _, e in out))
        if len(out) > 1 and self.link.bandwidth is not None and self.link.cost(1, whole[1] - whole[0], self.workers) < self.link.cost(
                len(out), sum(e - s for s, e in out), self.workers):
            return [whole]
        return out

    def readinto_many(self, jobs: Sequence[tuple[int, memoryview]]) -> None:
        self.readinto_groups([jobs])

    def readinto_groups(self, groups: Sequence[Sequence[tuple[int, memoryview]]]) -> None:
        """Fill every job of every group (a group: the rows wanted of one tensor). Ranges are
        merged only within a group, never across groups, so no byte between two tensors is
        read; each group is fetched as its (merged) ranges or as one covering range, whichever
        the link model says is cheaper; all requests of all groups go out in parallel.

        On a link not measured yet, a batch of several groups first calibrates the model on
        its own groups: a few fetched whole (bandwidth), then the one with the most ranges
        fetched range by range (the cost of one request on this client); the rest is planned
        with the measured model."""
        for jobs in groups:
            for pos, dst in jobs:
                if pos < 0 or pos + len(dst) > self.size:
                    raise ValueError(f"{self.name}: read of {len(dst)} bytes at {pos} goes beyond the end of the "
                                     f"file ({self.size} bytes)")
        todo = [g for g in groups if g]
        if len(todo) > 2 and self.link.bandwidth is None:
            first = sorted(todo, key=_span_bytes)[-min(4, len(todo) // 2):]  # the largest: bandwidth-bound
            self._fetch_groups(first, whole=True)
            todo = [g for g in todo if not any(g is f for f in first)]
        if len(todo) > 2 and self.link.per_request is None:
            many = max(todo, key=len)
            if len(many) >= 8:
                self._fetch_groups([many], whole=False, merge=False)
                todo = [g for g in todo if g is not many]
        self._fetch_groups(todo)

    def _fetch_groups(self, groups: Sequence[Sequence[tuple[int, memoryview]]], *, whole: bool | None = None,
                      merge: bool = True) -> None:
        """Fetch the groups in one parallel batch (``whole``: each as one covering range;
        ``merge=False``: each job as its own range; default: as :meth:`plan` says) and tell the
        link model how long the batch took."""
        plans = []
        for jobs in groups:
            order = sorted(range(len(jobs)), key=lambda i: jobs[i][0])
            ranges = [(jobs[i][0], jobs[i][0] + len(jobs[i][1])) for i in order]
            if whole:
                rs = [(ranges[0][0], max(e for _, e in ranges))]
            elif not merge:
                rs = _touching(ranges)
            else:
                rs = self.plan(ranges)
            plans.append((jobs, order, rs))
        ranges = [r for _, _, rs in plans for r in rs]
        if not ranges:
            return
        t0 = time.perf_counter()
        if len(ranges) == 1:
            blobs = [self._fetch(*ranges[0])]
        else:
            with ThreadPoolExecutor(min(self.workers, len(ranges))) as ex:
                blobs = list(ex.map(lambda r: self._fetch(*r), ranges))
        self.link.observe_batch(sum(e - s for s, e in ranges), time.perf_counter() - t0, len(ranges))
        base = 0
        for jobs, order, rs in plans:
            k = 0
            for i in order:
                pos, dst = jobs[i]
                while not rs[k][0] <= pos < rs[k][1] or pos + len(dst) > rs[k][1]:
                    k += 1
                a = pos - rs[k][0]
                dst[:] = blobs[base + k][a: a + len(dst)]
            base += len(rs)

    def read(self, pos: int, n: int) -> bytes:
        return self._fetch(pos, pos + n) if n else b""


def _span_bytes(jobs: Sequence[tuple[int, memoryview]]) -> int:
    return max(p + len(d) for p, d in jobs) - min(p for p, _ in jobs)


def _touching(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with only those that touch or overlap joined (no gap read through)."""
    out = [list(ranges[0])]
    for s, e in ranges[1:]:
        if s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


# ----------------------------------------------------------------------------- formats
def _open_safetensors(f: RemoteFile) -> RangedTensors:
    if f.size < 8:
        raise ValueError(f"{f.name}: truncated safetensors file ({f.size} bytes)")
    (n,) = np.frombuffer(f.read(0, 8), "<u8").tolist()
    if n > f.size - 8 or n > MAX_HEADER:
        raise ValueError(f"{f.name}: header length {n} does not fit the file ({f.size} bytes)")
    found, _ = parse_header(f.read(8, n), f.size - 8 - n, f.name)  # the one header check, as for local files
    entries = {name: TensorEntry(name, code, shape, 8 + n + b) for name, (code, shape, b, _) in found.items()}
    return RangedTensors(f, entries)


def _open_weights(f: RemoteFile) -> RangedTensors:
    from .torch_zip import is_torch_zip, open_torch_zip

    if f.name.endswith(".safetensors"):
        return _open_safetensors(f)
    if is_torch_zip(f):
        return open_torch_zip(f)
    raise ValueError(f"{f.name}: not a torch zip checkpoint; the legacy pickle format is not read remotely "
                     "(download it and analyse the local file, which needs torch)")


class RemoteSource(RangedSource):
    """A checkpoint read by range requests; see the module docs for fingerprints."""

    #: rows are best fetched for all samples of a checkpoint in one batch (see nin.prefetch_samples)
    batch_reads = True

    def __init__(self, stores: Sequence[RangedTensors], config: Mapping[str, Any] | None, description: str):
        super().__init__(stores, config, description)

    def fingerprint(self, names: Sequence[str] | None = None) -> str:
        fp = self.metadata_fingerprint(names)
        return super().fingerprint(names) if fp is None else fp  # None: nothing from the server to go by

    def metadata_fingerprint(self, names: Sequence[str] | None = None) -> str | None:
        ids = {id(s.reader): s.reader.content_id() for s in self.stores}
        if any(v is None for v in ids.values()):
            return None
        known = set(self.tensor_names())
        chosen = sorted(known if names is None else set(names))
        h = hashlib.blake2b(digest_size=16)
        h.update(b"remote-v1\0")
        for n in chosen:
            s = self._store(n)
            e = s.info(n)
            h.update(f"{n}\0{self.dtype(n)}\0{e.shape}\0{e.strides}\0{ids[id(s.reader)]}\0{e.span}\0".encode())
        return h.hexdigest()


# ----------------------------------------------------------------------------- resolving
def _join(url: str, name: str) -> str:
    return url.rstrip("/") + "/" + name


def _hub_url(url: str) -> str:
    """``hf://org/name@rev/...``: a revision with '/' must be URL-quoted for HfFileSystem."""
    if not url.startswith("hf://") or "@" not in url:
        return url
    head, _, rest = url.partition("@")
    rev, sep, tail = rest.partition("/")
    parts = rest.split("/")
    if rev.startswith("refs") and len(parts) >= 3 and parts[1] in ("pr", "convert"):
        rev, tail = "/".join(parts[:3]), "/".join(parts[3:])
        sep = "/" if tail else ""
    return f"{head}@{quote(rev, safe='')}{sep}{tail}"


def resolve_url(url: str, config: Mapping[str, Any] | None = None, *, storage_options: Mapping | None = None,
                link: LinkModel | None = None) -> RemoteSource:
    """A :class:`RemoteSource` for an fsspec URL of a weights file or a model folder."""
    fsspec = _fsspec()
    url = _hub_url(url)
    try:
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ValueError(f"{url}: cannot open this URL with fsspec: {exc}") from None
    link = link or LinkModel()
    extra = 0
    infos: dict[str, Any] = {}

    def small(path: str) -> bytes | None:
        nonlocal extra
        try:
            data = fs.cat_file(path)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise ValueError(f"{fs.unstrip_protocol(path)}: {type(exc).__name__}: {exc}") from exc
        extra += len(data)
        return data

    def rfile(path: str) -> RemoteFile:
        return RemoteFile(fs, path, fs.unstrip_protocol(path), infos.get(path), link=link)

    name = root.rstrip("/").rsplit("/", 1)[-1]
    is_file = name.endswith((".safetensors", ".bin", ".pt", ".pth", ".index.json"))
    folder = root.rstrip("/").rsplit("/", 1)[0] if is_file else root.rstrip("/")
    if is_file:
        target = root
    else:
        target = None
        for cand in FOLDER_FILES:  # info (HTTP HEAD), not exists: fsspec's HTTP exists() is a GET
            p = _join(folder, cand)
            try:
                infos[p] = fs.info(p)
            except FileNotFoundError:
                continue
            except Exception as exc:
                raise ValueError(f"{url}: {type(exc).__name__}: {exc}") from exc
            target = p
            break
        if target is None:
            raise ValueError(f"{url}: no weights found: tried {list(FOLDER_FILES)} in this folder")
    cfg = config
    if cfg is None:
        raw = small(_join(folder, "config.json"))
        if raw is not None:
            cfg = parse_json(raw, f"{url}: corrupt config.json")
            if not isinstance(cfg, dict):
                raise ValueError(f"{url}: config.json must hold a JSON object")
    if target.endswith(".index.json"):
        raw = small(target)
        if raw is None:
            raise ValueError(f"{fs.unstrip_protocol(target)}: not found")
        wmap, _ = parse_index(raw, fs.unstrip_protocol(target))  # shard names: plain names in the folder
        shards = sorted(set(wmap.values()))
        files = [rfile(_join(target.rsplit("/", 1)[0], s)) for s in shards]
    else:
        files = [rfile(target)]
    if len(files) > 1:
        with ThreadPoolExecutor(min(len(files), MAX_WORKERS)) as ex:
            stores = list(ex.map(_open_weights, files))
    else:
        stores = [_open_weights(files[0])]
    src = RemoteSource(stores, cfg, url)
    src.extra_bytes_read = extra
    return src
