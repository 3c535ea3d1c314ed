"""Opening the checkpoints of a series one after another with bounded disk (``cache=``).

``CheckpointReader(checkpoints, cache="keep" | "evict" | "none")`` opens checkpoint ``k``
(:meth:`open`), and while it is analysed already fetches checkpoint ``k + 1`` in a background
thread; :meth:`release` lets ``k`` go. For hub ids (``org/name`` with a revision):

- ``keep`` (today's behaviour): ``snapshot_download`` into the Hugging Face cache, kept;
- ``evict``: the same download, and :meth:`release` deletes what *this run* downloaded for
  that checkpoint (blobs and snapshot links that were not in the cache before it started);
  files already in the cache are never deleted, nor a blob another kept revision links to;
- ``none``: nothing is written: the checkpoint is read by range requests
  (``hf://org/name@rev``: :mod:`.hub` and :mod:`.remote`; one API call per revision, one
  resolve per file, within the hub's rate limits).

Local paths and URLs are opened as they are in every mode. A download killed midway leaves
what ``huggingface_hub`` leaves: a partial file under ``blobs/*.incomplete``, never a snapshot
link to a partial file (it renames a blob into place only when complete); older
``huggingface_hub`` versions resume it, newer ones download the file again and never remove it,
so the next download of that repository deletes it (:func:`~.sources.clear_dead_partials`).
A result is stored only after its checkpoint was read completely.

:meth:`read_stats` gives ``(bytes_read, size)`` of an analysed checkpoint: the bytes fetched
(``none``, URLs, ``.bin``: headers and rows; ``keep``/``evict``: the files downloaded, 0 when
they were already cached) and the size of its weight files.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .base import TensorSource, hub_offline, is_hub_id
from .sources import hub_snapshot, resolve_source, split_hub_id

__all__ = ["CACHE_MODES", "CheckpointReader", "hub_identity", "hub_signature", "hub_url", "list_hub_commits",
           "reading_checkpoints", "reading_record"]

CACHE_MODES = ("keep", "evict", "none")


def _repo_dir(cache_dir: Optional[str], repo: str) -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(cache_dir or HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))


def _files_under(d: Path) -> set[str]:
    if not d.exists():
        return set()
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() or p.is_symlink()}


class CheckpointReader:
    """See the module docs. ``checkpoints`` are ``(source, revision)`` pairs."""

    def __init__(self, checkpoints: Sequence[tuple[Any, Optional[str]]], cache: str = "keep", *,
                 cache_dir: Optional[str | os.PathLike] = None, prefetch: bool = True,
                 download: Optional[Callable[[str, Optional[str], Optional[str]], str]] = None):
        if cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
        self.checkpoints = list(checkpoints)
        self.cache = cache
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.prefetch = prefetch
        self._download = download or self._snapshot
        self._pool = ThreadPoolExecutor(1) if prefetch else None
        self._pending: dict[int, Future] = {}
        self._new_files: dict[int, tuple[Path, set[str]]] = {}
        self._ours: set[str] = set()  # blobs (absolute paths) this run downloaded and has not deleted
        self._lock = threading.Lock()
        self.stats: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------------ fetching
    def _snapshot(self, repo: str, rev: Optional[str], cache_dir: Optional[str]) -> str:
        return hub_snapshot(repo, rev, cache_dir, hub_offline())

    def _fetch(self, k: int) -> Any:
        """What :meth:`open` needs for checkpoint ``k``: a local folder, or a resolved source."""
        source, revision = self.checkpoints[k]
        if not is_hub_id(source):
            return resolve_source(source, revision=revision)
        repo, rev = split_hub_id(source, revision)
        if self.cache == "none":
            return resolve_source(hub_url(repo, rev))
        d = _repo_dir(self.cache_dir, repo)
        with self._lock:  # two revisions sharing blobs: take the "before" picture one at a time
            before = _files_under(d)
            folder = self._download(repo, rev, self.cache_dir)
            after = _files_under(d)
        new = {f for f in after - before if not f.endswith(".incomplete")}
        self._new_files[k] = (d, new)
        self._ours.update(os.path.realpath(d / f) for f in new if f.startswith("blobs/"))
        size = sum((d / f).stat().st_size for f in new if f.startswith("blobs/"))
        src = resolve_source(folder)
        src.description = f"{repo}@{rev or 'main'} ({folder})"
        self.stats[k] = (size, _weights_size(Path(folder)))
        return src

    def _submit(self, k: int) -> None:
        if self._pool is not None and 0 <= k < len(self.checkpoints) and k not in self._pending:
            self._pending[k] = self._pool.submit(self._fetch, k)

    def open(self, k: int) -> TensorSource:
        """Checkpoint ``k`` as a source; starts fetching ``k + 1``."""
        fut = self._pending.pop(k, None)
        self._submit(k + 1)
        return fut.result() if fut is not None else self._fetch(k)

    def read_stats(self, k: int, src: Any) -> tuple[Optional[int], Optional[int]]:
        """``(bytes_read, size)`` of checkpoint ``k``, taken after its analysis: for a hub
        download the bytes downloaded (0 if cached) and the weights' size; for a source read by
        range (URLs, ``none``, ``.bin``) what it fetched so far and its size; None if unknown."""
        if k in self.stats:
            return self.stats[k]
        got, size = getattr(src, "bytes_read", None), getattr(src, "size", None)
        return (None if got is None else int(got)), (None if size is None else int(size))

    def release(self, k: int) -> None:
        """Let checkpoint ``k`` go; with ``evict``, delete what this run downloaded for it."""
        entry = self._new_files.pop(k, None)
        if self.cache != "evict" or entry is None:
            return
        with self._lock:  # never while the next checkpoint is being downloaded (see _evict)
            self._evict(*entry)

    def _evict(self, d: Path, new: set[str]) -> None:
        """Delete this run's files of one checkpoint. Called under the download lock: a
        download in progress creates its snapshot folder before its links, and may link a blob
        this checkpoint brought (identical checkpoints), so neither may be judged mid-way.
        Besides its own new files, the blobs its links point to that an earlier checkpoint of
        this run downloaded (an identical checkpoint links them instead of downloading) go too,
        once nothing else links them."""
        new = set(new)
        for f in list(new):
            target = os.path.realpath(d / f)
            if f.startswith("snapshots/") and target in self._ours:
                new.add(str(Path(target).relative_to(os.path.realpath(d))))
        still_linked = set()
        for snap in (d / "snapshots").rglob("*"):
            rel = str(snap.relative_to(d))
            if snap.is_symlink() and rel not in new:
                still_linked.add(os.path.realpath(snap))
        for f in sorted(new, key=lambda f: not f.startswith("snapshots")):  # links first, then blobs
            p = d / f
            if f.startswith("blobs/") and os.path.realpath(p) in still_linked:
                continue
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            self._ours.discard(os.path.realpath(p))
        for snap in sorted((d / "snapshots").glob("*"), reverse=True) if (d / "snapshots").exists() else ():
            try:
                snap.rmdir()  # only if empty
            except OSError:
                pass

    def close(self) -> None:
        for f in self._pending.values():
            f.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for k in list(self._new_files):
            self.release(k)


def _weights_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir()
               if p.name.endswith((".safetensors", ".bin")) and p.is_file())


def hub_url(source: Any, revision: Optional[str]) -> Optional[str]:
    """``hf://org/name@rev`` for a hub id (read by range, :mod:`.hub`), else None."""
    if not is_hub_id(source):
        return None
    repo, rev = split_hub_id(source, revision)
    return f"hf://{repo}" + (f"@{rev}" if rev else "")


def reading_checkpoints(cps: Sequence[Any], cache: str) -> tuple[tuple, tuple]:
    """``(checkpoints to analyse, checkpoints to fingerprint)`` for a series read with
    ``cache``. With ``none`` a hub checkpoint becomes its ``hf://`` URL for both; with
    ``evict`` online it is fingerprinted through ``hf://`` (the hub's LFS sha256, no download)
    and analysed from the download; offline, and with ``keep``, both are the checkpoints as
    given (fingerprinted from the cached files' bytes). ``cps`` are
    :class:`~.checkpoints.Checkpoint` objects (any dataclass with ``source`` and ``revision``)."""
    if cache == "keep" or (cache == "evict" and hub_offline()):
        return tuple(cps), tuple(cps)
    remote = []
    for c in cps:
        url = hub_url(c.source, c.revision)
        remote.append(c if url is None else dataclasses.replace(c, source=url, revision=None))
    return tuple(remote if cache == "none" else cps), tuple(remote)


def reading_record(reading: dict) -> dict:
    """run.json's ``reading``: bytes fetched and checkpoint size per checkpoint label, and the
    totals over the checkpoints where both are known."""
    per = {label: dict(bytes_read=got, size=size) for label, (got, size) in reading.items()}
    known = [v for v in per.values() if v["bytes_read"] is not None and v["size"] is not None]
    return dict(checkpoints=per, bytes_read=sum(v["bytes_read"] for v in known),
                size=sum(v["size"] for v in known), n_known=len(known))


def _hub_target(source: Any, revision: Optional[str]) -> Optional[tuple]:
    """``(repo, revision, kind)`` of a hub checkpoint: ``kind`` "meta" for an ``hf://`` URL
    (fingerprinted from the hub's hashes), "bytes" for a hub id (fingerprinted from the
    downloaded bytes); None for anything else or, for hub ids, offline."""
    if isinstance(source, str) and source.startswith("hf://") and revision is None:
        from .hub import parse_hub_url

        repo, rev, path = parse_hub_url(source)
        return None if path else (repo, rev, "meta")
    if is_hub_id(source) and not hub_offline():
        repo, rev = split_hub_id(source, revision)
        return repo, rev, "bytes"
    return None


def list_hub_commits(cps: Sequence[Any]) -> None:
    """One ``list_repo_refs`` call per repository with two or more revisions in ``cps``: every
    revision's commit becomes known without a call of its own (:func:`.hub.commit_of`)."""
    from collections import Counter

    repos = Counter(t[0] for t in (_hub_target(c.source, c.revision) for c in cps) if t is not None)
    if repos:
        from .hub import refs

        for repo, n in repos.items():
            if n >= 2:
                refs(repo)


def hub_signature(source: Any, revision: Optional[str]) -> Optional[str]:
    """A key under which a hub checkpoint's fingerprint can be kept between runs: its
    endpoint, repository and commit (immutable) and the kind of fingerprint; None when not a
    hub checkpoint or its commit is not known yet."""
    t = _hub_target(source, revision)
    if t is None:
        return None
    from .hub import commit_of, endpoint

    commit = commit_of(t[0], t[1])
    return None if commit is None else f"hub|{endpoint()}|{t[0]}|{commit}|{t[2]}"


def hub_identity(source: Any, revision: Optional[str]) -> Optional[str]:
    """The hub's identity of a hub id's revision (one API call: :meth:`.hub.HubRevision.identity`),
    so identical revisions are downloaded and hashed once; None for other checkpoints."""
    t = _hub_target(source, revision)
    if t is None or t[2] != "bytes":
        return None
    from .hub import revision_info

    return revision_info(t[0], t[1]).identity()
