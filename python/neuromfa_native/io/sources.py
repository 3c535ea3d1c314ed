"""Resolving a *source* (a checkpoint in one of several forms) into a lazy tensor provider.

:func:`resolve_source` accepts

- a local Hugging Face model directory: ``config.json`` plus ``model.safetensors``, a sharded
  ``model.safetensors.index.json``, or ``pytorch_model.bin`` (or its sharded index): torch's
  zip format is read without torch, lazily, through a restricted unpickler
  (:mod:`.torch_zip`); only the legacy non-zip format is loaded with
  ``torch.load(..., weights_only=True, map_location="cpu")``;
- a single ``.safetensors`` file (or a ``*.safetensors.index.json``); a ``config.json`` next
  to it is used when present, otherwise the architecture is inferred from tensor names;
- a torch ``nn.Module`` (its ``state_dict()``; meta-device tensors are an error) or a state
  dict mapping names to torch tensors or numpy arrays;
- a Hugging Face hub id, ``"org/name"`` or ``"org/name@revision"`` (or ``revision=``),
  fetched with ``huggingface_hub.snapshot_download`` (config and weight files only), which
  uses the local cache and honours ``HF_HUB_OFFLINE``;
- a URL of a weights file or model folder (``https://...``, ``hf://org/name@rev``, or through
  fsspec ``file://...``, ``s3://...``), read by byte range (:mod:`.remote`);
- an already resolved :class:`TensorSource` (returned as is).

torch and huggingface_hub are imported only inside the functions that need them.

Every provider offers ``config``, ``tensor_names()``, ``shape(name)``, ``dtype(name)``
(``"float16"``, ``"bfloat16"``, ``"float32"``, ...), ``get(name)`` (float16 stays float16,
bfloat16 becomes float32 exactly), ``get_slice(name, rows, cols)`` and ``fingerprint()``.

The fingerprint of a provider is :meth:`.base.TensorSource.fingerprint`.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .base import HUB_ID, TensorSource, hub_offline, is_hub_id, is_url
from .._fs import parse_json
from .safetensors import SafetensorsFile, ShardedSafetensors, bf16_to_float32, close_names, gather, parse_index, row_view

_CHUNK = 1 << 24  # bytes per piece of byte_chunks

__all__ = [
    "HUB_ALLOW_PATTERNS",
    "SafetensorsSource",
    "StateDictSource",
    "TensorSource",
    "hub_snapshot",
    "is_hub_id",
    "is_url",
    "resolve_source",
    "split_hub_id",
]

#: Files fetched from the hub: config and weights only (no tokenizer, no code), safetensors
#: first; the pickle format only for revisions that have no safetensors (never both).
HUB_ALLOW_PATTERNS = ["config.json", "*.safetensors", "model.safetensors.index.json"]
HUB_FALLBACK_PATTERNS = ["config.json", "pytorch_model.bin*"]

class SafetensorsSource(TensorSource):
    """Tensors of a safetensors file or sharded index, memory-mapped."""

    def __init__(self, store: SafetensorsFile | ShardedSafetensors, config: Mapping[str, Any] | None, description: str):
        super().__init__(config, description)
        self.store = store

    def tensor_names(self) -> list[str]:
        return self.store.tensor_names()

    def shape(self, name: str) -> tuple[int, ...]:
        return self.store.shape(name)

    def dtype(self, name: str) -> str:
        return self.store.dtype(name)

    def get(self, name: str) -> np.ndarray:
        return self.store.get(name)

    def get_slice(self, name: str, rows: Any = None, cols: Any = None, *, bf16_bits: bool = False) -> np.ndarray:
        return self.store.get_slice(name, rows, cols, bf16_bits=bf16_bits)

    def byte_chunks(self, name: str) -> Iterable[memoryview]:
        # Positioned reads into one reused buffer, not the memory map: mapped pages would count
        # towards the process's RSS (a whole checkpoint, for a fingerprint of every tensor).
        f = self.store.shard(name) if isinstance(self.store, ShardedSafetensors) else self.store
        begin, end = f.byte_range(name)
        buf = memoryview(bytearray(min(_CHUNK, max(end - begin, 1))))
        with open(f.path, "rb", buffering=0) as fh:
            pos = begin
            while pos < end:
                fh.seek(pos)
                got = fh.readinto(buf[: min(len(buf), end - pos)])
                if not got:
                    raise ValueError(f"{f.path}: file shrank while hashing tensor {name!r}")
                yield buf[:got]
                pos += got


def _torch_dtype_name(t: Any) -> str:
    return str(t.dtype).replace("torch.", "")


class StateDictSource(TensorSource):
    """Tensors of a state dict: torch tensors (CPU or not; never meta) or numpy arrays."""

    def __init__(self, tensors: Mapping[str, Any], config: Mapping[str, Any] | None, description: str):
        super().__init__(config, description)
        bad = [k for k in tensors if not isinstance(k, str)]
        if bad:
            raise TypeError(f"state dict keys must be str, got {bad[:3]!r}")
        self._t: dict[str, Any] = {}
        meta: list[str] = []
        for k, v in tensors.items():
            if isinstance(v, np.ndarray):
                self._t[k] = v
            elif _is_torch_tensor(v):
                if v.device.type == "meta":
                    meta.append(k)
                self._t[k] = v
            else:
                raise TypeError(
                    f"state dict value {k!r} must be a torch tensor or numpy array, got {type(v).__name__}"
                )
        if meta:
            raise ValueError(
                f"{description}: {len(meta)} tensors are on the meta device (no data), e.g. {meta[:3]}; "
                "load the real weights (e.g. from_pretrained without device_map='meta' / init_empty_weights)"
            )

    def _tensor(self, name: str) -> Any:
        try:
            return self._t[name]
        except KeyError:
            raise ValueError(f"{self.description}: no tensor named {name!r}{close_names(name, self._t)}") from None

    def tensor_names(self) -> list[str]:
        return list(self._t)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(s) for s in self._tensor(name).shape)

    def dtype(self, name: str) -> str:
        t = self._tensor(name)
        return t.dtype.name if isinstance(t, np.ndarray) else _torch_dtype_name(t)

    @staticmethod
    def _to_numpy(t: Any, bf16_bits: bool = False) -> np.ndarray:
        """torch tensor -> numpy (bfloat16 widened to float32 exactly, or its uint16 bit
        patterns with ``bf16_bits``); numpy passes."""
        if isinstance(t, np.ndarray):
            return t
        import torch  # a torch object is at hand, so torch is already imported

        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype == torch.bfloat16:
            bits = t.contiguous().view(torch.int16).numpy().view(np.uint16)
            return bits if bf16_bits else bf16_to_float32(bits)
        return t.numpy()

    def get(self, name: str) -> np.ndarray:
        arr = self._to_numpy(self._tensor(name)).view()
        arr.flags.writeable = False
        return arr

    def get_slice(self, name: str, rows: Any = None, cols: Any = None, *, bf16_bits: bool = False) -> np.ndarray:
        t = self._tensor(name)
        if isinstance(t, np.ndarray):
            return gather(t, rows, cols, name)
        import torch

        t = t.detach().reshape(row_view(tuple(t.shape), repr(name)))  # a view of a contiguous tensor
        for dim, idx, what in ((0, rows, "rows"), (1, cols, "cols")):
            if idx is None:
                continue
            arr = np.asarray(idx)
            if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
                raise ValueError(f"{what} of tensor {name!r} must be None or a 1-d integer array")
            n = t.shape[dim]
            if arr.size and (arr.min() < -n or arr.max() >= n):
                raise ValueError(f"{what} of tensor {name!r} out of range for size {n}")
            t = t.index_select(dim, torch.as_tensor(arr.astype(np.int64) % max(n, 1), device=t.device))
        return np.array(self._to_numpy(t, bf16_bits))

    def byte_chunks(self, name: str) -> Iterable[bytes | memoryview]:
        t = self._tensor(name)
        if isinstance(t, np.ndarray):
            a = np.ascontiguousarray(t)
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
        else:
            import torch

            t = t.detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            a = t.numpy()
        mv = memoryview(a.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # numpy's stubs: ndarray has no __buffer__
        for s in range(0, len(mv), _CHUNK):
            yield mv[s : s + _CHUNK]


# ----------------------------------------------------------------------------- helpers
def _is_torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _read_config(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    cfg = parse_json(raw, f"{path}: corrupt config.json")
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: config.json must hold a JSON object")
    return cfg


def _torch_load(path: Path) -> dict[str, Any]:
    """Load a pickle checkpoint safely: weights_only=True, on CPU, memory-mapped if possible."""
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{path} is a pickle checkpoint; reading it needs torch (pip install torch), "
            "or convert it to safetensors"
        ) from None
    sd: Any = None
    for mmap in (True, False):
        try:
            sd = torch.load(path, weights_only=True, map_location="cpu", mmap=mmap)
            break
        except Exception as exc:  # UnpicklingError for anything that is not plain weights
            if mmap and isinstance(exc, RuntimeError) and "mmap" in str(exc):
                continue  # legacy (non-zip) files cannot be memory-mapped: load them whole
            raise ValueError(f"{path}: torch.load(weights_only=True) refused or failed: {exc}") from exc
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(sd).__name__}")
    return dict(sd)


def _from_bin(paths: Sequence[Path], config: Mapping[str, Any] | None, description: str) -> TensorSource:
    # torch's zip checkpoints are read without torch, by byte range (torch_zip.py); only the
    # legacy non-zip pickle format still goes through torch.load.
    from .ranged import LocalFile, RangedSource
    from .torch_zip import is_torch_zip, open_torch_zip

    files = [LocalFile(p) for p in paths]
    if all(is_torch_zip(f) for f in files):
        return RangedSource([open_torch_zip(f) for f in files], config, description)
    tensors: dict[str, Any] = {}
    for p in paths:
        tensors.update(_torch_load(p))
    return StateDictSource(tensors, config, description)


def _from_directory(d: Path, config: Mapping[str, Any] | None) -> TensorSource:
    cfg = config if config is not None else _read_config(d / "config.json")
    if (d / "model.safetensors.index.json").is_file():
        return SafetensorsSource(ShardedSafetensors(d / "model.safetensors.index.json"), cfg, str(d))
    if (d / "model.safetensors").is_file():
        return SafetensorsSource(SafetensorsFile(d / "model.safetensors"), cfg, str(d))
    singles = sorted(d.glob("*.safetensors"))
    if len(singles) == 1:
        return SafetensorsSource(SafetensorsFile(singles[0]), cfg, str(d))
    bin_index = d / "pytorch_model.bin.index.json"
    if bin_index.is_file():
        wmap, _ = parse_index(bin_index.read_bytes(), bin_index)
        shards = [d / s for s in sorted(set(wmap.values()))]
        missing = [str(s) for s in shards if not s.is_file()]
        if missing:
            raise ValueError(f"{bin_index}: shards missing: {missing}")
        return _from_bin(shards, cfg, str(d))
    if (d / "pytorch_model.bin").is_file():
        return _from_bin([d / "pytorch_model.bin"], cfg, str(d))
    found = sorted(p.name for p in d.iterdir())[:20]
    raise ValueError(
        f"model directory {str(d)!r} holds no weights: expected model.safetensors, "
        f"model.safetensors.index.json or pytorch_model.bin; found {found}"
    )


def split_hub_id(source: str, revision: str | None) -> tuple[str, str | None]:
    rev: str | None
    repo, _, rev = source.partition("@")
    rev = rev or None
    if rev is not None and revision is not None and rev != revision:
        raise ValueError(f"revision given twice and differently: {source!r} and revision={revision!r}")
    return repo, rev or revision


#: a partial download under a name unique to its process (huggingface_hub since it stopped
#: sharing ``<etag>.incomplete`` between processes): ``blobs/<etag>.<8 hex>.incomplete``
_DEAD_PARTIAL = re.compile(r"^([0-9A-Za-z_-]+)\.[0-9a-f]{8}\.incomplete$")


def clear_dead_partials(repo: str, cache_dir: str | None) -> list[str]:
    """Delete the partial downloads of ``repo`` that no process is writing any more: what a run
    killed mid-download leaves in ``blobs/``. huggingface_hub (since it downloads into a name
    unique to its process) never resumes nor removes them, so each kill would keep up to one
    checkpoint's size on disk for good. A partial is deleted only when its file's download lock
    (``.locks/<repo folder>/<etag>.lock``, held by huggingface_hub for the whole download) can
    be taken at once; shared ``<etag>.incomplete`` files (older huggingface_hub, which resumes
    them) are left alone. Returns the deleted names."""
    try:
        from filelock import FileLock, Timeout
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return []
    root = Path(cache_dir or HF_HUB_CACHE)
    folder = "models--" + repo.replace("/", "--")
    blobs = root / folder / "blobs"
    gone = []
    for p in sorted(blobs.glob("*.incomplete")) if blobs.is_dir() else ():
        m = _DEAD_PARTIAL.match(p.name)
        if m is None:
            continue
        lock_path = root / ".locks" / folder / f"{m.group(1)}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path), timeout=0)
        try:
            with lock:
                p.unlink(missing_ok=True)
                gone.append(p.name)
        except (Timeout, OSError):  # being downloaded now, or not ours to delete
            continue
    return gone


def hub_snapshot(repo: str, rev: str | None, cache_dir: str | None, offline: bool) -> str:
    """The local snapshot folder of ``repo@rev``, resolved once per process and endpoint (a
    series runs one task per sample: one hub round trip per checkpoint, not per task)."""
    return _hub_snapshot(repo, rev, cache_dir, offline, os.environ.get("HF_ENDPOINT"))


hub_snapshot.cache_clear = lambda: _hub_snapshot.cache_clear()  # type: ignore[attr-defined,has-type]


@functools.lru_cache(maxsize=512)
def _hub_snapshot(repo: str, rev: str | None, cache_dir: str | None, offline: bool, endpoint: str | None) -> str:
    from huggingface_hub import snapshot_download

    def fetch(patterns):  # HF_ENDPOINT as set now (huggingface_hub reads it once, at import)
        return snapshot_download(repo, revision=rev, allow_patterns=patterns, cache_dir=cache_dir,
                                 local_files_only=offline, endpoint=endpoint.rstrip("/") if endpoint else None)

    if not offline:
        clear_dead_partials(repo, cache_dir)
    folder = fetch(HUB_ALLOW_PATTERNS)
    if not any(Path(folder).glob("*.safetensors")):
        folder = fetch(HUB_FALLBACK_PATTERNS)
    return folder


def _from_hub(
    source: str, revision: str | None, cache_dir: str | os.PathLike | None, config: Mapping[str, Any] | None
) -> TensorSource:
    repo, rev = split_hub_id(source, revision)
    import importlib.util

    if importlib.util.find_spec("huggingface_hub") is None:
        raise ValueError(
            f"{source!r} is not a local path and looks like a hub id; fetching it needs "
            "huggingface_hub (pip install huggingface_hub)"
        )
    offline = hub_offline()
    try:
        folder = hub_snapshot(repo, rev, None if cache_dir is None else str(cache_dir), offline)
    except Exception as exc:  # the hub's errors are many; keep them as the cause
        how = "in the local cache (offline mode: HF_HUB_OFFLINE)" if offline else "on the hub or in the local cache"
        raise ValueError(
            f"could not find {repo!r} at revision {rev or 'main'!r} {how}: {type(exc).__name__}: {exc}"
        ) from exc
    src = _from_directory(Path(folder), config)
    src.description = f"{repo}@{rev or 'main'} ({folder})"
    return src


def resolve_source(
    source: Any,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    config: Mapping[str, Any] | None = None,
) -> TensorSource:
    """Turn ``source`` into a :class:`TensorSource` (see the module docstring for the forms).

    Parameters
    ----------
    source:
        path, hub id, torch module, state dict or ``TensorSource``.
    revision:
        hub revision (branch, tag such as ``"step3000"``, or commit); only for hub ids.
    cache_dir:
        hub cache folder (default: huggingface_hub's, ``HF_HUB_CACHE``/``HF_HOME``).
    config:
        a config dict to use instead of the source's own ``config.json``/``module.config``.

    Returns
    -------
    TensorSource
        reads tensor names, dtypes, shapes, rows and fingerprints of the checkpoint.

    Raises
    ------
    ValueError, TypeError
        a path without weights, an unknown form of source, or a revision given for a local path.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> src = nm.resolve_source("examples/pythia-tiny/step0")
    >>> type(src).__name__
    'SafetensorsSource'
    """
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping (a config.json dict) or None, got {type(config).__name__}")
    if isinstance(source, TensorSource):
        if config is not None:
            source.config = dict(config)
        return source
    if is_url(source):  # remote.py: range reads (the package's HTTP client, the hub, or fsspec)
        from .remote import resolve_url

        if revision is not None:
            raise ValueError(f"revision={revision!r} only applies to hub ids; put it in the URL (hf://org/name@rev)")
        return resolve_url(source, config)
    if isinstance(source, (str, os.PathLike)):
        if not os.fspath(source).strip():
            raise ValueError("source is an empty name (it would mean the current directory)")
        p = Path(source)
        if p.is_dir():
            if revision is not None:
                raise ValueError(f"revision={revision!r} only applies to hub ids, not to the directory {str(p)!r}")
            return _from_directory(p, config)
        if p.is_file():
            cfg = config if config is not None else _read_config(p.parent / "config.json")
            if p.name.endswith(".safetensors"):
                return SafetensorsSource(SafetensorsFile(p), cfg, str(p))
            if p.name.endswith(".index.json") and "safetensors" in p.name:
                return SafetensorsSource(ShardedSafetensors(p), cfg, str(p))
            if p.suffix in (".bin", ".pt", ".pth"):
                return _from_bin([p], cfg, str(p))
            raise ValueError(f"source {str(p)!r}: unknown file type (expected .safetensors, .index.json or .bin)")
        if isinstance(source, str) and HUB_ID.match(source) and not source.startswith((".", "/", "~")):
            return _from_hub(source, revision, cache_dir, config)
        raise ValueError(f"source {str(source)!r} is not an existing file or directory, nor a hub id 'org/name[@revision]'")
    if _is_torch_module(source):
        cfg = config
        if cfg is None and getattr(source, "config", None) is not None:
            c = source.config
            cfg = c.to_dict() if hasattr(c, "to_dict") else dict(c)
        return StateDictSource(source.state_dict(), cfg, f"{type(source).__name__} module")
    if isinstance(source, Mapping):
        return StateDictSource(source, config, "state dict")
    raise TypeError(
        "source must be a path, a hub id 'org/name[@revision]', a torch nn.Module, a state dict "
        f"or a TensorSource, got {type(source).__name__}"
    )
