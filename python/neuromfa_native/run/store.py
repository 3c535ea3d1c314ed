"""The run directory: an atomic, resumable store of (checkpoint, sample) results.

Layout of a run directory ``DIR``::

    DIR/run.json                       configuration, its hash, the series, library version
    DIR/results/<key>/sample-00003.npz   one finished (checkpoint, sample) result
    DIR/fingerprints.json              cache: local file sizes/mtimes -> weight fingerprint
    DIR/.lock                          held (flock) by the run writing into DIR
    DIR/.report.lock                   held (flock) while a report is loaded and written

Guarantees:

- Every file is written to a temporary file in the same directory, flushed, fsync'ed, and
  moved into place with ``os.replace`` (then the directory is fsync'ed): a file under its
  final name is always complete.  A run killed at any moment (even ``kill -9``) leaves at most
  temporary files (``.tmp-*``), which the next run deletes and no reader ever trusts.
- Results are keyed by the checkpoint's weight fingerprint (docs/spec.md section 7), the digest
  of the network its layout builds (``config.json`` shapes the network too:
  :func:`~neuromfa_native.network.fingerprint.result_key`) and the sample index, so a changed
  checkpoint or config is never matched with an old result, and identical checkpoints share one
  result.  ``run.json`` records each checkpoint's ``fingerprint`` and, where it differs, its
  result ``key`` (directories written before the network digest have none: their results are
  keyed by the fingerprint alone, read by :func:`load_run`, and recomputed once by a rerun).
- ``run.json`` holds the parameters that change the numbers (per_layer, layout, box,
  direction, threshold, min_edges, decimals, q, node_dimension, nfd_threshold).  Opening a
  directory with a different configuration is a ``ValueError`` naming the differences,
  unless ``overwrite=True``, which deletes the old results first. Discarding the results, or
  ``overwrite=True``, also removes every file derived from them (:mod:`.derived`).  Every result file also
  carries the configuration hash and is validated on load; a file that fails validation is
  renamed ``*.corrupt``, warned about and recomputed.
- A run directory's own tree is the only thing a run touches: ``run.json``,
  ``fingerprints.json``, ``results/``, the lock files, ``plots/`` and the derived files the
  package reads back (``summary.json``, ``correlations.json``, the CSV tables) may not be
  symbolic links (a ``ValueError`` says so), and links inside ``results/`` are skipped with a warning, never
  followed, read or renamed.  ``run.json`` is read only through
  :func:`~.schema.check_run_info`; a result file that cannot be read whole (a bad checksum, a
  missing field, a wrong type) is quarantined and recomputed with a warning, never a
  traceback.
- Only one run writes into a directory at a time (an advisory ``flock`` on ``.lock``; the
  lock dies with its process).  Reading results needs no lock.  Report writers (``neuromfa
  analyze`` at its end, ``neuromfa report``) take turns on ``.report.lock`` (:func:`report_lock`)
  and load the run after taking it, so the tables, summary and plots on disk always come from
  one writer, and a report started during a run cannot overwrite the final one with older
  results.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .. import _validation as check
from .._version import __version__
from .._fs import TMP_PREFIX, atomic_write_bytes, atomic_write_text, dumps, fsync_dir, no_link, parse_json
from .derived import OWN_DERIVED, remove_derived
from .schema import FORMAT, check_run_info
from .._results import readonly
from ..science.analysis import NodeDimensions, SampleResult
from .checkpoints import Checkpoint
from ..config import AnalysisConfig
from ..mfa.engine import Spectrum
from .series import summarize

__all__ = ["RunStore", "config_hash", "load_run", "report_lock"]

RESULT_FORMAT = "neuromfa-result/1"
LOCK_NAMES = (".lock", ".report.lock")
#: the run directory's own entries, none of which may be a symbolic link
OWN_NAMES = ("run.json", "fingerprints.json", "results", "plots") + LOCK_NAMES + OWN_DERIVED


def config_hash(config: dict) -> str:
    """Short stable hash of a configuration dict (sorted-key JSON)."""
    return hashlib.sha256(dumps(config, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# one result <-> one .npz (no pickle: numpy arrays plus a JSON header)


def result_to_npz(result: SampleResult, *, key: str, chash: str) -> bytes:
    """Serialise a :class:`SampleResult` as ``.npz`` bytes (``allow_pickle`` never needed)."""
    arrays: dict = {}
    spec_meta: dict = {}
    tuples = []
    for f in dataclasses.fields(Spectrum):
        v = getattr(result.spectrum, f.name)
        if isinstance(v, np.ndarray):
            arrays[f"spectrum.{f.name}"] = v
        else:
            spec_meta[f.name] = v
            if isinstance(v, tuple):
                tuples.append(f.name)
    meta = dict(format=RESULT_FORMAT, key=key, config_hash=chash, checkpoint=result.checkpoint,
                sample=result.sample, n_network_nodes=result.n_network_nodes,
                n_network_edges=result.n_network_edges, seconds=result.seconds,
                architecture=result.architecture, layout=result.layout, spectrum=spec_meta,
                spectrum_tuples=tuples, node_dimensions=None)
    nd = result.node_dimensions
    if nd is not None:
        arrays["nd.node"], arrays["nd.layer"], arrays["nd.dimension"] = nd.node, nd.layer, nd.dimension
        meta["node_dimensions"] = dict(layer_names=list(nd.layer_names), threshold=nd.threshold)
    if result.controls or result.weight_stats is not None or result.by_layer is not None:  # controls.py
        from ..science.controls import extras_to_npz
        extras_to_npz(result, arrays, meta)
    body = dumps(meta)
    arrays["meta"] = np.array(body)
    arrays["meta_sha256"] = np.array(hashlib.sha256(body.encode()).hexdigest())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def result_from_npz(path: os.PathLike, *, key: Optional[str] = None, chash: Optional[str] = None,
                    sample: Any = "any") -> SampleResult:
    """Load and validate one result file; ``ValueError`` saying why when it cannot be trusted
    (whatever is wrong with it: a file from elsewhere may hold anything)."""
    try:
        return _result_from_npz(path, key, chash, sample)
    except ValueError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError, RecursionError, MemoryError) as exc:
        raise ValueError(f"malformed result file: {type(exc).__name__}: {str(exc)[:200]}") from None


def _stored_members(path: os.PathLike) -> None:
    """A result file is what ``np.savez`` writes: every member stored, none larger than the file
    (a compressed member would be inflated before anything could be checked)."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ValueError(f"unreadable result file: {type(exc).__name__}: {exc}") from None
    size = os.path.getsize(path)
    for i in infos:
        if i.compress_type != zipfile.ZIP_STORED or i.file_size != i.compress_size or i.file_size > size:
            raise ValueError(f"member {i.filename!r} is compressed or larger than the file: not a result file")


def _result_from_npz(path: os.PathLike, key: Optional[str], chash: Optional[str], sample: Any) -> SampleResult:
    _stored_members(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}  # reading every member checks the zip CRCs
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ValueError(f"unreadable result file: {type(exc).__name__}: {exc}") from None
    if "meta" not in data or "meta_sha256" not in data:
        raise ValueError("not a result file (no header)")
    body = str(data["meta"])
    if hashlib.sha256(body.encode()).hexdigest() != str(data["meta_sha256"]):
        raise ValueError("header checksum mismatch")
    meta = parse_json(body, "result header")
    if not isinstance(meta, dict) or meta.get("format") != RESULT_FORMAT:
        raise ValueError(f"unknown result format {meta.get('format') if isinstance(meta, dict) else meta!r}"[:200])
    if key is not None and meta.get("key") != key:
        raise ValueError(f"belongs to checkpoint {meta.get('key')!r}, not {key!r}")
    if chash is not None and meta.get("config_hash") != chash:
        raise ValueError(f"computed with configuration {meta.get('config_hash')}, not {chash}")
    if sample != "any" and meta.get("sample") != sample:
        raise ValueError(f"holds sample {meta.get('sample')!r}, not {sample!r}")
    kw = dict(meta["spectrum"])
    for name in meta.get("spectrum_tuples", []):
        kw[name] = tuple(kw[name])
    names = {f.name for f in dataclasses.fields(Spectrum)}
    for k, v in data.items():
        if k.startswith("spectrum."):
            kw[k[len("spectrum."):]] = readonly(v)
    kw = {k: v for k, v in kw.items() if k in names}
    try:
        spectrum = Spectrum(**kw)
    except TypeError as exc:
        raise ValueError(f"spectrum fields do not match this library version: {exc}") from None
    _check_spectrum(spectrum, "spectrum")
    nd = None
    if meta.get("node_dimensions") is not None:
        m = meta["node_dimensions"]
        nd = NodeDimensions(node=data["nd.node"], layer=data["nd.layer"], dimension=data["nd.dimension"],
                            layer_names=tuple(m["layer_names"]), threshold=m["threshold"])
    from ..science.controls import extras_from_npz  # controls / rival statistics
    res = SampleResult(checkpoint=meta["checkpoint"], sample=meta["sample"], spectrum=spectrum,
                       n_network_nodes=int(meta["n_network_nodes"]), n_network_edges=int(meta["n_network_edges"]),
                       seconds=float(meta["seconds"]), node_dimensions=nd, architecture=meta.get("architecture", ""),
                       layout=meta.get("layout", ""), **extras_from_npz(data, meta))
    _check_result(res)
    return res


def _real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_spectrum(s: Spectrum, what: str) -> None:
    """The types and shapes every reader of a spectrum relies on (a result file from elsewhere
    may hold anything that passes its checksum)."""
    arrays = {f: getattr(s, f) for f in ("q", "tau", "alpha", "f", "radius", "tau_r2", "tau_stderr", "log_z")}
    if not all(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in arrays.values()):
        raise ValueError(f"{what}: arrays must be floating point")
    n = s.q.shape[0] if s.q.ndim == 1 else -1
    want = {"q": (n,), "tau": (n,), "alpha": (n - 1,), "f": (n - 1,), "tau_r2": (n,), "tau_stderr": (n,),
            "radius": (s.radius.size,), "log_z": (n, s.radius.size)}
    if n < 2 or s.radius.size < 1 or any(arrays[k].shape != shp for k, shp in want.items()):
        raise ValueError(f"{what}: inconsistent array shapes")
    if not (_real(s.alpha0) and _real(s.width) and check.is_int(s.n_nodes) and check.is_int(s.n_distances)
            and all(isinstance(x, str) for x in s.notes)):
        raise ValueError(f"{what}: alpha0, width, n_nodes or notes of the wrong type")


def _check_result(r: SampleResult) -> None:
    if not (isinstance(r.checkpoint, str) and isinstance(r.architecture, str) and isinstance(r.layout, str)
            and (r.sample is None or check.is_int(r.sample))):
        raise ValueError("checkpoint, sample, architecture or layout of the wrong type")
    for name, spec in (r.controls or {}).items():
        _check_spectrum(spec, f"control {name!r}")
    nd = r.node_dimensions
    if nd is not None and not (
            nd.node.ndim == 1 and nd.node.dtype.kind in "iu" and nd.layer.shape == nd.node.shape
            and nd.layer.dtype.kind in "iu" and nd.dimension.shape == nd.node.shape and nd.dimension.dtype.kind == "f"
            and all(isinstance(x, str) for x in nd.layer_names) and _real(nd.threshold)
            and (not nd.layer.size or 0 <= nd.layer.min() <= nd.layer.max() < len(nd.layer_names))):
        raise ValueError("node dimensions of the wrong types or shapes")


def _sample_name(sample: Optional[int]) -> str:
    return "full.npz" if sample is None else f"sample-{int(sample):05d}.npz"


def _sample_of(name: str) -> Any:
    if name == "full.npz":
        return None
    if name.startswith("sample-") and name.endswith(".npz"):
        try:
            return int(name[len("sample-"):-len(".npz")])
        except ValueError:
            return "bad"
    return "bad"



# ---------------------------------------------------------------------------------------------


class RunStore:
    """Writer of a run directory (see the module docstring).  Use :meth:`close` (or ``with``)."""

    def __init__(self, path: Union[str, os.PathLike], config: Any, *, overwrite: bool = False):
        """``config``: the run's :class:`~neuromfa_native.AnalysisConfig` (its
        :meth:`~neuromfa_native.AnalysisConfig.result_json` is stored) or that dict itself."""
        self.path = Path(path)
        self.config = config.result_json() if isinstance(config, AnalysisConfig) else dict(config)
        self.hash = config_hash(self.config)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"out {str(self.path)!r} exists and is not a directory")
        _refuse_links(self.path)
        if self.path.is_dir() and not (self.path / "run.json").exists() and not overwrite and any(
                p.name not in LOCK_NAMES and not p.name.startswith(TMP_PREFIX) for p in self.path.iterdir()):
            raise ValueError(f"out {str(self.path)!r} is not empty and holds no neuromfa run (no run.json); "
                             "choose a new or empty directory, or pass --overwrite")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fh: Optional[Any] = None
        self._created: Any = None  # run.json's "created": kept from a resumed run, else set when claimed
        self._lock()
        try:
            self._check_or_reset(overwrite)
            self._clean_tmp()
            self.results = self.path / "results"
            self.results.mkdir(exist_ok=True)
            self.fingerprint_cache = _read_fingerprint_cache(self.path / "fingerprints.json")
            self._run: dict = {}
            if not (self.path / "run.json").exists():  # claim the directory before any slow step
                self._created = time.time()
                atomic_write_text(self.path / "run.json", dumps(dict(
                    format=FORMAT, version=__version__, config=self.config, config_hash=self.hash,
                    created=self._created, status="starting", series=[], aggregation={}), indent=1))
        except BaseException:
            self.close()
            raise

    # -- locking -------------------------------------------------------------------------------
    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            return
        fh = _open_lock(self.path / ".lock")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise ValueError(f"another neuromfa run is writing into {str(self.path)!r}; wait for it or use "
                             "another --out") from None
        self._lock_fh = fh

    def close(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()  # releases the flock
            self._lock_fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- configuration ---------------------------------------------------------------------------
    def _check_or_reset(self, overwrite: bool) -> None:
        run = self.path / "run.json"
        entries = [p.name for p in self.path.iterdir()
                   if p.name not in LOCK_NAMES and not p.name.startswith(TMP_PREFIX)]
        if not run.exists():
            if "results" in entries or (entries and not overwrite):
                raise ValueError(f"out {str(self.path)!r} is not empty and holds no neuromfa run (no run.json); "
                                 "choose a new or empty directory" + ("" if "results" in entries else
                                                                      ", or pass --overwrite"))
            if overwrite:  # nothing derived from earlier results is presented as the new run's
                remove_derived(self.path)
            return
        try:
            old = run_info(self.path)
            old_config = old["config"]
        except ValueError as exc:
            if not overwrite:
                raise ValueError(f"{exc}; remove it or pass --overwrite") from None
            old, old_config = {}, None
        if old.get("config_hash") == self.hash and old_config == json.loads(dumps(self.config)):
            self._created = old.get("created")
            if overwrite:  # the results of the same configuration are kept; what was derived from them is not
                remove_derived(self.path)
            return
        if not overwrite and old_config is not None:
            new = json.loads(dumps(self.config))
            diff = [f"{k}: {old_config.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old_config) | set(new))
                    if old_config.get(k) != new.get(k)]
            shown = "; ".join(d if len(d) < 80 else d[:77] + "..." for d in diff)
            raise ValueError(f"out {str(self.path)!r} holds results of another configuration ({shown}); "
                             "pass --overwrite (overwrite=True) to discard them, or choose another --out")
        remove_derived(self.path)
        if (self.path / "results").exists():
            shutil.rmtree(self.path / "results")  # an error here must stop, not leave stale results
        fp = self.path / "fingerprints.json"
        if fp.exists():
            fp.unlink()  # fingerprints depend on the layout, which the new configuration may change
        run.unlink()

    def _clean_tmp(self) -> None:
        """Temp files a killed run left in results/ or next to run.json (not the report's)."""
        stray = [p for name in ("run.json", "fingerprints.json") for p in self.path.glob(f"{TMP_PREFIX}{name}-*")]
        stray += [p for d in _own_dirs(self.path / "results") for p in d.glob(f"{TMP_PREFIX}*")]
        for p in stray:
            try:
                p.unlink()
            except OSError:
                pass

    # -- the run ---------------------------------------------------------------------------------
    def begin(self, checkpoints, fingerprints, aggregation: dict, notes: Optional[list] = None,
              keys: Optional[list] = None) -> None:
        """Record the series (with each checkpoint's note and result key, if any) and its
        configuration in ``run.json`` (before any result).  ``keys``: the folder of each
        checkpoint's results under ``results/`` (default: its fingerprint)."""
        self._created = self._created or time.time()  # what run.json holds: no need to read it back
        notes = notes or [""] * len(checkpoints)
        keys = keys or list(fingerprints)
        series = [dict(c.to_dict(), fingerprint=fp, **({"key": k} if k != fp else {}), **({"notes": n} if n else {}))
                  for c, fp, k, n in zip(checkpoints, fingerprints, keys, notes)]
        self._run = dict(format=FORMAT, version=__version__, config=self.config, config_hash=self.hash,
                         created=self._created, updated=time.time(), series=series,
                         aggregation=aggregation, status="running")
        atomic_write_text(self.path / "run.json", dumps(self._run, indent=1))
        atomic_write_text(self.path / "fingerprints.json", dumps(self.fingerprint_cache, indent=0))

    def finish(self, info: dict, status: str = "complete") -> None:
        """Record the end of the run: ``complete``, or ``failed`` with what failed in ``info``."""
        self._run.update(info, status=status, updated=time.time())
        atomic_write_text(self.path / "run.json", dumps(self._run, indent=1))

    def load(self) -> dict:
        """Valid finished results: ``{(key, sample): SampleResult}``; bad files are quarantined."""
        return _load_results(self.path / "results", self.hash, quarantine=True)

    def put(self, key: str, sample: Optional[int], result: SampleResult) -> Path:
        """Store one result atomically; returns its path."""
        d = self.results / key
        if d.is_symlink():  # a link in our own tree: replaced, never followed
            d.unlink()
        if not d.exists():
            d.mkdir()
            fsync_dir(self.results)
        p = d / _sample_name(sample)
        atomic_write_bytes(p, result_to_npz(result, key=key, chash=self.hash))
        return p


def _load_results(results: Path, chash: str, *, quarantine: bool) -> dict:
    out: dict = {}
    if results.is_symlink():
        warnings.warn(f"{str(results)!r} is a symbolic link: not read (a run reads only its own files)",
                      RuntimeWarning, stacklevel=3)
        return out
    if not results.is_dir():
        return out
    bad, links = [], [d.name for d in results.iterdir() if d.is_symlink()]
    for d in _own_dirs(results):
        for p in sorted(d.iterdir()):
            if p.name.startswith(TMP_PREFIX) or not p.name.endswith(".npz"):
                continue
            if p.is_symlink():
                links.append(f"{d.name}/{p.name}")
                continue
            s = _sample_of(p.name)
            try:
                if s == "bad":
                    raise ValueError("unexpected file name")
                out[(d.name, s)] = result_from_npz(p, key=d.name, chash=chash, sample=s)
            except ValueError as exc:
                bad.append(f"{p.relative_to(results.parent)} ({exc})")
                if quarantine:
                    try:
                        os.replace(p, p.with_name(p.name + ".corrupt"))
                    except OSError:
                        pass
    if links:
        warnings.warn(f"{len(links)} symbolic link(s) in {str(results)!r} skipped (a run reads and writes only its "
                      "own files): " + ", ".join(links[:5]), RuntimeWarning, stacklevel=3)
    if bad:
        what = "renamed *.corrupt and recomputed" if quarantine else "ignored"
        warnings.warn(f"{len(bad)} result file(s) could not be trusted and are {what}: " + "; ".join(bad[:5]),
                      RuntimeWarning, stacklevel=3)
    return out


@contextlib.contextmanager
def report_lock(path: os.PathLike):
    """Hold the report lock of run directory ``path`` (blocking: waits for another report
    writer).  Load the run *inside* it, then write the report: the last report written then
    always reflects the latest results, and its files all come from one writer."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"run directory {str(path)!r} does not exist")
    _refuse_links(path)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        yield
        return
    with _open_lock(path / ".report.lock") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def load_run(path: os.PathLike, *, n_bootstrap: Optional[int] = None, ci: Optional[float] = None,
             seed: Optional[int] = None, baseline: Any = None, filter: Optional[str] = None):
    """Read a (finished or partial) run directory into a :class:`~neuromfa_native.run.series.Series`.

    Needs no checkpoint files: the series, fingerprints and configuration come from
    ``run.json``.  The aggregation options default to the run's own.

    Parameters
    ----------
    path:
        the run directory (``--out`` of ``neuromfa analyze``, ``out=`` of
        :func:`~neuromfa_native.analyze_series`).
    n_bootstrap, ci, seed, baseline, filter:
        aggregation options; ``None`` keeps the run's own.

    Returns
    -------
    Series

    Raises
    ------
    ValueError
        a directory that is not a run directory, or a bad aggregation option.

    Examples
    --------
    >>> import tempfile
    >>> import neuromfa_native as nm
    >>> out = tempfile.mkdtemp()
    >>> s = nm.analyze_series(["examples/pythia-tiny/step0", "examples/pythia-tiny/step16"], samples=2,
    ...                       per_layer=8, out=out, n_threads=1)
    >>> bool((nm.load_run(out).alpha0_mean == s.alpha0_mean).all())
    True
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"run directory {str(path)!r} does not exist")
    info = run_info(path)
    config, series, agg = info["config"], info["series"], info["aggregation"]
    if not series:
        raise ValueError(f"the run in {str(path)!r} has not started yet (no checkpoint recorded)")
    names = {f.name for f in dataclasses.fields(Checkpoint)}
    cps = [Checkpoint(**{k: v for k, v in c.items() if k in names}) for c in series]
    fps = [c.get("fingerprint") for c in series]
    keys = [c.get("key") or c.get("fingerprint") for c in series]  # before result keys: the fingerprint
    done = _load_results(path / "results", info.get("config_hash") or config_hash(config), quarantine=False)
    ids = [None] if config.get("per_layer") is None else agg["samples"]
    results = []
    for c, key in zip(cps, keys):
        rs = [done[(key, s)] for s in ids if (key, s) in done]
        results.append([dataclasses.replace(r, checkpoint=c.label) for r in rs])
    return summarize(cps, results, config=config, samples=agg["samples"],
                     baseline=agg["baseline"] if baseline is None else baseline,
                     filter=agg["filter"] if filter is None else filter, fingerprints=fps,
                     n_bootstrap=agg["n_bootstrap"] if n_bootstrap is None else n_bootstrap,
                     ci=agg["ci"] if ci is None else ci, seed=agg["seed"] if seed is None else seed,
                     n_computed=int(info.get("n_computed", 0)), n_reused=int(info.get("n_reused", 0)),
                     notes=[c.get("notes", "") for c in series])


def run_info(path: os.PathLike) -> dict:
    """The parsed and checked ``run.json`` of a run directory (:func:`~.schema.check_run_info`);
    ``ValueError`` naming the file and the problem otherwise."""
    path = Path(path)
    run = no_link(path / "run.json")
    if not run.is_file():
        raise ValueError(f"{str(path)!r} is not a neuromfa run directory (no run.json)")
    try:
        raw = run.read_bytes()
    except OSError as exc:
        raise ValueError(f"{str(run)!r} cannot be read: {exc.strerror or exc}") from None
    return check_run_info(parse_json(raw, f"{str(run)!r}"), f"{str(run)!r}")


def _refuse_links(path: Path) -> None:
    """``ValueError`` when one of the run directory's own entries is a symbolic link."""
    for name in OWN_NAMES:
        no_link(path / name)


def _own_dirs(results: Path) -> list:
    """The result folders under ``results`` that are real folders (links are never followed)."""
    if not results.is_dir() or results.is_symlink():
        return []
    return [d for d in sorted(results.iterdir()) if d.is_dir() and not d.is_symlink()]


def _open_lock(path: Path):
    """The lock file ``path`` opened for writing, created if missing; never through a link
    (``O_NOFOLLOW``: a link named ``.lock`` would create or truncate its target)."""
    no_link(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise ValueError(f"cannot open the lock file {str(path)!r}: {exc.strerror or exc}") from None
    return os.fdopen(fd, "a+")


def _read_fingerprint_cache(path: Path) -> dict:
    """``fingerprints.json``: stat signatures -> digests (str) or non-finite counts (str -> int);
    anything else in it is dropped (it is only a cache)."""
    try:
        cache = parse_json(no_link(path).read_bytes(), str(path)) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {k: v for k, v in cache.items() if isinstance(v, str) or (
        isinstance(v, dict) and all(isinstance(n, str) and type(c) is int for n, c in v.items()))}
