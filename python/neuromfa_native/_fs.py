"""Writing files safely: atomic writes (a file under its final name is always complete) and
JSON that knows numpy.  The bottom of the package: it imports nothing of it but
:mod:`._results`.

:func:`atomic_write_bytes` writes to a temporary file in the same directory (named
``.tmp-<name>-...``, :data:`TMP_PREFIX`), flushes and fsyncs it, moves it into place with
``os.replace`` and fsyncs the directory: a process killed at any moment leaves at most a
temporary file, which no reader trusts.

:func:`parse_json` and :func:`read_json` read JSON from elsewhere (headers, ``config.json``,
``run.json``, result files of other tools): any problem, a nesting deeper than any file of
theirs needs included (where Python's parser would raise ``RecursionError``), is a one-line
``ValueError`` naming the file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._results import thawed

__all__ = ["TMP_PREFIX", "atomic_write_bytes", "atomic_write_text", "dumps", "fsync_dir", "no_link", "own_dir",
           "parse_json", "read_json"]

#: The deepest nesting of arrays and objects a JSON file read by the library may have (its
#: own files and those of the tools it reads nest a handful of levels).
MAX_JSON_DEPTH = 64

#: Prefix of the temporary files of :func:`atomic_write_bytes`.
TMP_PREFIX = ".tmp-"


def _json_default(o: Any):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Mapping):  # the read-only mappings of results
        return thawed(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any, **kw) -> str:
    """JSON with numpy scalars/arrays converted; NaN written as ``NaN`` (Python's json)."""
    return json.dumps(obj, default=_json_default, **kw)


def _unique_keys(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {dup[:80]!r} appears twice in one object")
    return out


def _depth_ok(obj: Any, max_depth: int) -> bool:
    """Whether no array or object nests deeper than ``max_depth`` (iteratively: no recursion)."""
    todo = [(obj, 1)]
    while todo:
        x, d = todo.pop()
        if isinstance(x, dict):
            x = x.values()
        elif not isinstance(x, list):
            continue
        if d > max_depth:
            return False
        todo.extend((v, d + 1) for v in x if isinstance(v, (dict, list)))
    return True


def parse_json(data: bytes | str, where: Any, *, unique_keys: bool = False,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from a file or server, or ``ValueError`` naming ``where`` in one line: not UTF-8,
    not JSON, nested deeper than ``max_depth``, or (``unique_keys``) a key twice in an object."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
        hook = _unique_keys if unique_keys else None
        obj = json.loads(text, object_pairs_hook=hook)
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply (more than {max_depth} levels)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{where}: not valid JSON: {str(exc)[:200]}") from None
    if not _depth_ok(obj, max_depth):
        raise ValueError(f"{where}: JSON nested too deeply (more than {max_depth} levels)")
    return obj


def read_json(path: os.PathLike, what: str = "") -> Any:
    """:func:`parse_json` of a file (``ValueError`` naming it when it cannot be read)."""
    where = f"{str(path)!r}" + (f" ({what})" if what else "")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{where}: cannot be read: {exc.strerror or exc}") from None
    return parse_json(data, where)


def no_link(path: os.PathLike) -> Path:
    """``path`` when it is not a symbolic link; ``ValueError`` otherwise. A run directory's own
    files and folders are never links: following one would read, rename or write something
    outside the directory."""
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"{str(path)!r} is a symbolic link; a run directory's own files and folders may not be "
                         "links (this one points elsewhere on the disk): remove it")
    return path


def own_dir(path: os.PathLike) -> Path:
    """The folder ``path``, created if missing; ``ValueError`` if it is a link (see :func:`no_link`)."""
    path = no_link(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def fsync_dir(path: Path) -> None:
    """fsync the directory ``path`` (a rename or a new file in it is then durable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        fh = os.fdopen(fd, "wb")  # owns fd from here on, closed on every path
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    try:
        with fh:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; give the usual umask-based mode
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode())
