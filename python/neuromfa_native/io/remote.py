"""Checkpoints read by byte range from a server (SPEC 12).

A source ``"https://host/path/model-folder"``, ``"hf://org/name@rev"`` (the Hugging Face hub),
or any other fsspec URL (``"s3://..."``, ``"file:///..."``) of a weights file or of a model
folder becomes a :class:`RemoteSource`. A folder is read by name, since HTTP has no listing:
``config.json`` (optional), then the first of ``model.safetensors.index.json``,
``model.safetensors``, ``pytorch_model.bin.index.json``, ``pytorch_model.bin`` that exists (a
``HEAD`` each); a hub revision's files come from its listing (:mod:`.hub`).

Transports: ``http(s)://`` and ``hf://`` go through this package's own HTTP client
(:mod:`.http`, :mod:`.httpfile`: every reply checked against the request, the file's version
pinned, bodies capped, exchanges timed, bytes counted where they arrive, rate limits waited
out; the hub: one API call per revision and one resolve per file, :mod:`.hub`); other schemes
through fsspec (``pip install fsspec`` and the scheme's package), which is imported only then.

What is fetched: each weights file's header (safetensors: 8 bytes + the JSON header; torch
zip: the central directory, ``data.pkl`` and 30-byte local headers) and then only the byte
ranges of the rows the network asks for, never a tensor it does not use, and nothing more (no
read-ahead). Within one request for rows (:meth:`RemoteFile.readinto_groups`) the ranges of a
tensor are merged when the gap between two costs less than a new request, or replaced by the
tensor's used span when that is cheaper still (:class:`LinkModel`, measured on the link), and
all are fetched in parallel (a thread pool of 32).

Errors: a missing file is a ``ValueError`` naming the URL; a dropped connection, a timeout or a
short read is retried (3 tries in a row without progress, only the missing bytes) and then a
``ValueError``; a server that ignores ``Range`` or answers another range than asked is a
``ValueError`` saying so. A read never returns bytes it did not receive: no number is computed
from a partial or misplaced read.

Accounting: :attr:`RemoteSource.bytes_read` (the body bytes the server sent for this source,
counted by the transport: headers, rows, and replies that were refused or cut) and
:attr:`RemoteSource.size` (the checkpoint's weights files, from the server's metadata).

Fingerprints (:meth:`RemoteSource.fingerprint`): reading every byte of a remote checkpoint to
fingerprint it would defeat range reads, so a remote fingerprint is built from what the server
says about each weights file:

- a hub revision: :func:`.hub.hub_fingerprint`, the blob ids and LFS sha256 of its config and
  weight files: revisions with byte-identical files get the same fingerprint, known from one
  API call before any byte is read (the same for every layout);
- another server: a content hash where it gives one, else the URL with its ``ETag`` (or
  ``Last-Modified``) and size, plus, per tensor, its name, dtype, shape and byte range. An ETag
  identifies one version of one URL, so a rerun recognises the same checkpoint while identical
  files at two URLs are *not* detected (never wrongly merged either); with neither hash nor
  ETag nor Last-Modified the fingerprint falls back to reading the tensors (the byte-based one).

The same weights in another container, or a local copy, get another fingerprint.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

from .base import is_url
from .http import TransientError
from .httpfile import HttpFile
from .hub import WEIGHT_NAMES, hub_file, parse_hub_url, revision_info
from .linkmodel import LinkModel, link_for
from .ranged import RangedSource, RangedTensors, TensorEntry
from .._fs import parse_json
from .safetensors import MAX_HEADER, parse_header, parse_index

__all__ = ["LinkModel", "RemoteFile", "RemoteSource", "is_url", "resolve_url"]

#: names tried, in order, when a URL names a folder (the hub's own order of weight files)
FOLDER_FILES = WEIGHT_NAMES
RETRIES = 3
MAX_WORKERS = 32
MAX_CONFIG = 4 << 20  # bytes: a config.json larger than this is not a model's config
MAX_INDEX = 64 << 20  # bytes: a shard index (weight_map) larger than this is refused


def _fsspec():
    try:
        import fsspec
    except ImportError:
        raise ValueError("reading this URL needs fsspec (pip install fsspec, and the package of its scheme); "
                         "http(s):// and hf:// URLs need nothing more") from None
    return fsspec


class _Fsspec:
    """A byte source over an fsspec file (schemes other than http(s) and hf)."""

    def __init__(self, fs: Any, path: str):
        self.fs, self.path = fs, path
        self.tally = [0, 0]

    def fetch(self, start: int, end: int) -> bytes:
        try:
            got = self.fs.cat_file(self.path, start=start, end=end)
        except FileNotFoundError:
            raise ValueError(f"{self.fs.unstrip_protocol(self.path)}: not found (HTTP 404 or missing file)") from None
        except Exception as exc:  # dropped connection, timeout, 5xx: retried by the caller
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        self.tally[0] += 1
        self.tally[1] += len(got)
        return got


class RemoteFile:
    """A byte reader (see :mod:`.ranged`) over one remote file, by range requests through a
    byte source (``fetch(start, end)``: an :class:`~.httpfile.HttpFile`, or fsspec)."""

    def __init__(self, source: Any, name: str, size: int, info: Optional[Mapping[str, Any]] = None,
                 link: Optional[LinkModel] = None, workers: int = MAX_WORKERS):
        self.source, self.name, self.size = source, name, int(size)
        self.info = dict(info or {})
        self.link = link or LinkModel()
        self.workers = workers
        self._tally0 = list(getattr(source, "tally", (0, 0)))
        self._lock = threading.Lock()

    @property
    def bytes_read(self) -> int:
        """Body bytes the server sent for this file since it was opened (counted by the transport)."""
        return int(self.source.tally[1] - self._tally0[1])

    @property
    def requests(self) -> int:
        return int(self.source.tally[0] - self._tally0[0])

    # ------------------------------------------------------------------ identity
    def content_id(self) -> Optional[str]:
        """A content hash (``sha256:...``) or a version of this URL (``etag:URL:...``), or None."""
        info = {k.lower(): v for k, v in self.info.items()}
        lfs = info.get("lfs")
        if isinstance(lfs, Mapping) and lfs.get("sha256"):
            return f"sha256:{lfs['sha256']}"
        for k in ("sha256", "checksum"):
            if info.get(k):
                return f"{k}:{info[k]}"
        for k in ("etag", "last-modified", "mtime", "last_commit"):
            v = info.get(k)
            if v:
                return f"{k}:{self.name}:{v}:{self.size}"
        return None

    # ------------------------------------------------------------------ reading
    def _fetch(self, start: int, end: int) -> bytes | bytearray:
        """Bytes ``[start, end)``, exactly. A short answer is continued from where it stopped;
        a failed request (dropped connection, timeout, 5xx) is retried; ``RETRIES`` failures
        in a row without progress are an error; a refused answer (another range, a whole file,
        a changed file) is an error at once."""
        out = bytearray()
        fails, last = 0, None  # type: int, Optional[Exception]
        while len(out) < end - start:
            pos = start + len(out)
            t0 = time.perf_counter()
            try:
                got = self.source.fetch(pos, end)
            except TransientError as exc:
                fails, last = fails + 1, exc
                if fails >= RETRIES:
                    break
                time.sleep(0.05 * 2**fails)
                continue
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
            self.link.observe(len(got), time.perf_counter() - t0)
            if not out and len(got) == end - start:
                return got  # the whole range in one answer: no copy
            out += got
        else:
            return out
        raise ValueError(f"{self.name}: reading bytes [{start}, {end}) failed after {RETRIES} tries: {last}")

    def plan(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The ranges of one group (sorted ``[start, end)``) as :meth:`plan_groups` fetches them."""
        return self.plan_groups([ranges])[0] if ranges else []

    def plan_groups(self, groups: Sequence[Sequence[tuple[int, int]]]) -> list:
        """The requests of a batch of groups (each a tensor's sorted ``[start, end)`` ranges):
        touching ranges joined, then the gaps merged, smallest first and never across groups,
        while the batch is bound by its requests rather than by its bytes.

        A batch of ``n`` requests moving ``b`` bytes over parallel connections takes about
        ``max(n x per_request, b / bandwidth)`` (:class:`LinkModel`: the requests' cost and the
        link's bytes are spent at the same time); merging a gap of ``g`` bytes saves one request
        and costs ``g`` bytes, so it pays while ``(b + g) / bandwidth < n x per_request``. The
        plan is the fastest by the model and, among the fastest, the one with the fewest bytes:
        on a link where a request costs little, the rows asked for; where it costs much, spans
        up to whole tensors."""
        rs = [_touching(r) if r else [] for r in groups]
        c, bw = self.link.request_cost(self.workers), self.link.bandwidth
        if not bw or c <= 0:
            return rs
        n = sum(len(r) for r in rs)
        b = sum(e - s for r in rs for s, e in r)
        merge = set()
        for gap, g, i in sorted((r[i + 1][0] - r[i][1], g, i) for g, r in enumerate(rs) for i in range(len(r) - 1)):
            if (b + gap) / bw >= n * c:
                break
            n, b = n - 1, b + gap
            merge.add((g, i))
        out = []
        for g, r in enumerate(rs):
            m: list = []
            for i, (s, e) in enumerate(r):
                if i and (g, i - 1) in merge:
                    m[-1] = (m[-1][0], e)
                else:
                    m.append((s, e))
            out.append(m)
        return out

    def readinto_many(self, jobs: Sequence[tuple[int, memoryview]]) -> None:
        self.readinto_groups([jobs])

    def readinto_groups(self, groups: Sequence[Sequence[tuple[int, memoryview]]]) -> None:
        """Fill every job of every group (a group: the rows wanted of one tensor). Ranges are
        merged only within a group, never across groups, so no byte between two tensors is
        read; each group is fetched as its (merged) ranges or as one covering range, whichever
        the link model says is cheaper; all requests of all groups go out in parallel.

        On a link not measured yet, a batch of several groups first calibrates the model on
        its own groups: the largest fetched whole (bandwidth), then the one with the most
        ranges fetched range by range (the cost of one request on this client); the rest is
        planned with the measured model, which the process keeps for the link
        (:func:`~.linkmodel.link_for`)."""
        for jobs in groups:
            for pos, dst in jobs:
                if pos < 0 or pos + len(dst) > self.size:
                    raise ValueError(f"{self.name}: read of {len(dst)} bytes at {pos} goes beyond the end of the "
                                     f"file ({self.size} bytes)")
        todo = [g for g in groups if g]
        if len(todo) > 2 and self.link.bandwidth is None and self.link.merge_factor > 0:
            first = max(todo, key=_span_bytes)  # the largest tensor, read whole: the link's bandwidth
            self._fetch_groups([first], whole=True)
            todo = [g for g in todo if g is not first]
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
        orders, sorted_ranges = [], []
        for jobs in groups:
            order = sorted(range(len(jobs)), key=lambda i: jobs[i][0])
            orders.append(order)
            sorted_ranges.append([(jobs[i][0], jobs[i][0] + len(jobs[i][1])) for i in order])
        if whole:
            planned = [[(r[0][0], max(e for _, e in r))] for r in sorted_ranges]
        elif not merge:
            planned = [_touching(r) for r in sorted_ranges]
        else:
            planned = self.plan_groups(sorted_ranges)
        plans = list(zip(groups, orders, planned))
        ranges = [r for _, _, rs in plans for r in rs]
        if not ranges:
            return
        dests: list = [[] for _ in ranges]  # per range: the (offset in it, destination) of its jobs
        base = 0
        for jobs, order, rs in plans:
            k = 0
            for i in order:
                pos, dst = jobs[i]
                while not rs[k][0] <= pos < rs[k][1] or pos + len(dst) > rs[k][1]:
                    k += 1
                dests[base + k].append((pos - rs[k][0], dst))
            base += len(rs)

        def get(i: int) -> None:  # each range copied into its jobs as it arrives, then dropped
            blob = memoryview(self._fetch(*ranges[i]))
            for a, dst in dests[i]:
                dst[:] = blob[a: a + len(dst)]

        t0 = time.perf_counter()
        if len(ranges) == 1:
            get(0)
        else:
            with ThreadPoolExecutor(min(self.workers, len(ranges))) as ex:
                list(ex.map(get, range(len(ranges))))
        self.link.observe_batch(sum(e - s for s, e in ranges), time.perf_counter() - t0, len(ranges), self.workers)

    def read(self, pos: int, n: int) -> bytes:
        return bytes(self._fetch(pos, pos + n)) if n else b""


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
        self.hub_identity: Optional[str] = None  # a hub revision's fingerprint (see hub.py)

    def fingerprint(self, names: Sequence[str] | None = None) -> str:
        fp = self.metadata_fingerprint(names)
        return super().fingerprint(names) if fp is None else fp  # None: nothing from the server to go by

    def metadata_fingerprint(self, names: Sequence[str] | None = None) -> str | None:
        if self.hub_identity is not None:  # byte-identical weight files and config on the hub
            return self.hub_identity
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


def _config(raw: bytes | bytearray | None, where: str) -> Optional[dict]:
    if raw is None:
        return None
    cfg = parse_json(bytes(raw), f"{where}/config.json")  # the one JSON reader: depth-capped, one line
    if not isinstance(cfg, dict):
        raise ValueError(f"{where}/config.json: must hold a JSON object")
    return cfg


def _shards(raw: bytes | bytearray | None, where: str) -> list:
    """The shard file names of an index, each a plain file name next to the index (checked by
    :func:`~.safetensors.parse_index`, as for local indexes)."""
    if raw is None:
        raise ValueError(f"{where}: not found")
    wmap, _ = parse_index(bytes(raw), where)
    if not wmap:
        raise ValueError(f"{where}: corrupt index (no weight_map of tensor -> shard file)")
    return sorted(set(wmap.values()))


def _open_all(files: Sequence[RemoteFile]) -> list:
    if len(files) == 1:
        return [_open_weights(files[0])]
    with ThreadPoolExecutor(min(len(files), MAX_WORKERS)) as ex:
        return list(ex.map(_open_weights, files))


def resolve_url(url: str, config: Optional[Mapping[str, Any]] = None, *,
                storage_options: Optional[Mapping] = None, link: Optional[LinkModel] = None) -> RemoteSource:
    """A :class:`RemoteSource` for the URL of a weights file or a model folder: ``http(s)://``,
    ``hf://org/name[@rev][/file]``, or any other fsspec URL."""
    link = link or link_for(url)
    if url.startswith("hf://"):
        return _open_hub(url, config, link)
    if url.startswith(("http://", "https://")):
        if storage_options:
            raise ValueError("storage_options apply to fsspec URLs, not to http(s):// (read by this package's client)")
        return _open_http(url, config, link)
    return _open_fsspec(url, config, storage_options, link)


def _is_file_name(name: str) -> bool:
    return name.endswith((".safetensors", ".bin", ".pt", ".pth", ".index.json"))

def _http_file(url: str, link: LinkModel) -> RemoteFile:
    hf = HttpFile(url)
    hf.head()
    return RemoteFile(hf, url, hf.size or 0, info=hf.info, link=link)


def _open_http(url: str, config: Optional[Mapping[str, Any]], link: LinkModel) -> RemoteSource:
    path = url.split("?", 1)[0].rstrip("/")
    is_file = _is_file_name(path.rsplit("/", 1)[-1])
    folder = path.rsplit("/", 1)[0] if is_file else path
    target = url if is_file else None
    if target is None:
        for cand in FOLDER_FILES:  # a HEAD each (a 404 is cheap), in order
            if HttpFile(_join(folder, cand)).exists():
                target = _join(folder, cand)
                break
        if target is None:
            raise ValueError(f"{url}: no weights found: tried {list(FOLDER_FILES)} in this folder")
    cf = HttpFile(_join(folder, "config.json"))
    cfg = dict(config) if config is not None else _config(cf.read_small(MAX_CONFIG), folder)
    extra = cf.tally[1]
    if target.split("?", 1)[0].endswith(".index.json"):
        ix = HttpFile(target)
        shards = _shards(ix.read_small(MAX_INDEX), target)
        extra += ix.tally[1]
        base = target.split("?", 1)[0].rsplit("/", 1)[0]
        with ThreadPoolExecutor(min(len(shards), MAX_WORKERS)) as ex:
            files = list(ex.map(lambda s: _http_file(_join(base, s), link), shards))
    else:
        files = [_http_file(target, link)]
    src = RemoteSource(_open_all(files), cfg, url)
    src.extra_bytes_read = extra
    return src


def _open_hub(url: str, config: Optional[Mapping[str, Any]], link: LinkModel) -> RemoteSource:
    repo, rev, path = parse_hub_url(url)
    info = revision_info(repo, rev)
    target = path or info.weights()
    if info.file(target) is None:
        raise ValueError(f"{url}: the revision has no file {target!r}")
    where = f"hf://{repo}@{info.revision}"
    extra = 0
    cfg = dict(config) if config is not None else None
    if cfg is None and info.file("config.json") is not None:
        cf = hub_file(info, "config.json")
        before = cf.tally[1]
        cfg = _config(cf.read_small(MAX_CONFIG), where)
        extra += cf.tally[1] - before
    names = [target]
    if target.endswith(".index.json"):
        ix = hub_file(info, target)
        before = ix.tally[1]
        base = target.rsplit("/", 1)[0] + "/" if "/" in target else ""
        names = [base + s for s in _shards(ix.read_small(MAX_INDEX), f"{where}/{target}")]
        extra += ix.tally[1] - before
        missing = [n for n in names if info.file(n) is None]
        if missing:
            raise ValueError(f"{where}/{target}: the index names shards the revision does not have: {missing[:3]}")
    files = []
    for n in names:
        hf, meta = hub_file(info, n), info.file(n)
        ident = {"lfs": {"sha256": meta.sha256}} if meta is not None and meta.sha256 else {"etag": meta and meta.blob_id}
        files.append(RemoteFile(hf, hf.name, meta.size if meta is not None and meta.size is not None else 0,
                                info=ident, link=link))
    src = RemoteSource(_open_all(files), cfg, url)
    src.extra_bytes_read = extra
    if not path or path == info.weights():
        src.hub_identity = info.identity()
    return src


def _open_fsspec(url: str, config: Optional[Mapping[str, Any]], storage_options: Optional[Mapping],
                 link: LinkModel) -> RemoteSource:
    fsspec = _fsspec()
    try:
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ValueError(f"{url}: cannot open this URL with fsspec: {exc}") from None
    infos: dict[str, Any] = {}

    def small(path: str, cap: int) -> Optional[bytes]:
        try:
            if int(fs.info(path).get("size") or 0) > cap:
                raise ValueError(f"{fs.unstrip_protocol(path)}: larger than {cap} bytes")
            return fs.cat_file(path)
        except FileNotFoundError:
            return None
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(f"{fs.unstrip_protocol(path)}: {type(exc).__name__}: {exc}") from exc

    def rfile(path: str) -> RemoteFile:
        try:
            info = infos.get(path) or fs.info(path)
        except FileNotFoundError:
            raise ValueError(f"{fs.unstrip_protocol(path)}: not found") from None
        if info.get("size") is None:
            raise ValueError(f"{fs.unstrip_protocol(path)}: the server does not say the file's size; range reads "
                             "need it")
        return RemoteFile(_Fsspec(fs, path), fs.unstrip_protocol(path), int(info["size"]), info=info, link=link)

    is_file = _is_file_name(root.rstrip("/").rsplit("/", 1)[-1])
    folder = root.rstrip("/").rsplit("/", 1)[0] if is_file else root.rstrip("/")
    target = root if is_file else None
    for cand in () if is_file else FOLDER_FILES:
        try:
            infos[_join(folder, cand)] = fs.info(_join(folder, cand))
        except FileNotFoundError:
            continue
        except Exception as exc:
            raise ValueError(f"{url}: {type(exc).__name__}: {exc}") from exc
        target = _join(folder, cand)
        break
    if target is None:
        raise ValueError(f"{url}: no weights found: tried {list(FOLDER_FILES)} in this folder")
    cfg = dict(config) if config is not None else _config(small(_join(folder, "config.json"), MAX_CONFIG), url)
    if target.endswith(".index.json"):
        shards = _shards(small(target, MAX_INDEX), fs.unstrip_protocol(target))
        files = [rfile(_join(target.rsplit("/", 1)[0], s)) for s in shards]
    else:
        files = [rfile(target)]
    return RemoteSource(_open_all(files), cfg, url)
