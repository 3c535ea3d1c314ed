"""Headers and indexes as an attacker writes them (docs/bad-inputs.md): one safetensors header
check for local files and for files read by range (``file://`` through fsspec, ``http://``
from a server on 127.0.0.1), exact integer arithmetic, the reference implementation's rules;
shard names of an index are plain names in the model folder; JSON nested without end is a
one-line error naming the file.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import struct
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import pytest

from neuromfa_native.io.safetensors import SafetensorsFile, write_safetensors
from neuromfa_native.io.sources import resolve_source

DEEP = b"[" * 100_000 + b"]" * 100_000


def _st(path: Path, header: dict | bytes, data: bytes) -> Path:
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + data)
    return path


def _readers():
    """How a safetensors file is opened: locally, and by range through fsspec (file://, http://)."""
    out = [pytest.param("local", id="local")]
    try:
        import aiohttp  # noqa: F401
        import fsspec  # noqa: F401
    except ImportError:
        return out
    return out + [pytest.param("file", id="file-url"), pytest.param("http", id="http")]


@contextlib.contextmanager
def _serving(kind: str, folder: Path) -> Iterator[Optional[Callable[[str], str]]]:
    """For ``http``: a RangeServer of ``folder`` while the block runs (its ``url``); else None."""
    if kind != "http":
        yield None
        return
    from range_server import RangeServer
    with RangeServer(folder) as srv:
        yield srv.url


def _open(kind: str, path: Path, url: Optional[Callable[[str], str]] = None):
    """The reader of ``path`` of this kind; ``http`` without ``url``: served only while the
    header is read (enough for a refusal; a read of data needs the server, see :func:`_serving`)."""
    if kind == "local":
        return SafetensorsFile(path)
    from neuromfa_native.io.remote import resolve_url
    if kind == "file":
        return resolve_url(path.resolve().as_uri())
    if url is not None:
        return resolve_url(url(path.name))
    with _serving(kind, path.parent) as served:
        assert served is not None
        return resolve_url(served(path.name))


#: (header entries, data bytes, what the message says): every one refused by every reader
BAD_HEADERS = {
    "product-wraps": ({"w": {"dtype": "F32", "shape": [2**62 + 1, 4], "data_offsets": [0, 16]}}, 16,
                      "span 16 bytes but shape"),
    "negative-dims": ({"w": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}, 16,
                      "shape must be a list of non-negative integers"),
    "float-dims": ({"w": {"dtype": "F32", "shape": [2.0, 2.0], "data_offsets": [0, 16]}}, 16,
                   "shape must be a list of non-negative integers"),
    "bool-dims": ({"w": {"dtype": "F32", "shape": [True, 4], "data_offsets": [0, 16]}}, 16,
                  "shape must be a list of non-negative integers"),
    "bool-offsets": ({"w": {"dtype": "U8", "shape": [1], "data_offsets": [False, True]}}, 1,
                     "data_offsets must be"),
    "float-offsets": ({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0.0, 4.0]}}, 4, "data_offsets must be"),
    "overlap": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, 16, "overlaps the previous tensor"),
    "same-bytes": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                    "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 16, "overlaps the previous tensor"),
    "gap": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, 16, "leaves a gap after byte 0"),
    "trailing-bytes": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 16,
                       "cover 8 of the 16 bytes"),
    "unknown-dtype": ({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, 4, "unsupported dtype"),
    "metadata-not-strings": ({"__metadata__": {"format": {"x": 1}},
                              "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 4,
                             "__metadata__ must be a JSON object of strings"),
    "entry-not-object": ({"w": [1, 2, 3]}, 0, "header entry must have dtype"),
}


@pytest.mark.parametrize("kind", _readers())
@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
@pytest.mark.slow
def test_one_header_check_for_local_and_remote(tmp_path, kind, case) -> None:
    header, n, msg = BAD_HEADERS[case]
    p = _st(tmp_path / "m.safetensors", header, bytes(n))
    with pytest.raises(ValueError, match=msg) as err:
        _open(kind, p)
    assert "m.safetensors" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kind", _readers())
def test_a_key_given_twice_is_refused(tmp_path, kind) -> None:
    raw = (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
           b'"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}')
    with pytest.raises(ValueError, match="appears twice"):
        _open(kind, _st(tmp_path / "m.safetensors", raw, bytes(4)))


@pytest.mark.parametrize("kind", _readers())
def test_a_header_nested_without_end_is_one_line(tmp_path, kind) -> None:
    with pytest.raises(ValueError, match="nested too deeply") as err:
        _open(kind, _st(tmp_path / "m.safetensors", DEEP, b""))
    assert "m.safetensors" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kind", _readers())
def test_good_headers_still_read_the_same_everywhere(tmp_path, kind) -> None:
    arrs = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "z": np.zeros((0, 4), np.float16),
            "s": np.array(3.5, np.float64), "b": np.arange(4, dtype=np.uint8)}
    write_safetensors(tmp_path / "m.safetensors", arrs, metadata={"format": "pt"})
    with _serving(kind, tmp_path) as url:  # the server stays up for the reads, not only the header
        src = _open(kind, tmp_path / "m.safetensors", url)
        for name, want in arrs.items():
            np.testing.assert_array_equal(np.asarray(src.get(name)), want)


#: (shape, data_offsets, what the message says): numbers a file may give, beyond any array
HUGE_NUMBERS = {
    "two-3000-digit-dims": ([10**3000 - 1] * 2, [0, 4], "dimension above 2\\*\\*63, .*: an integer of 3000 digits"),
    "64-4000-digit-dims": ([10**4000 - 1] * 64, [0, 4], "dimension above 2\\*\\*63, .*: an integer of 4000 digits"),
    "2000-4000-digit-dims": ([10**4000 - 1] * 2000, [0, 4], "2000 dimensions, more than 64"),
    "65-dims": ([1] * 65, [0, 4], "65 dimensions, more than 64"),
    "dim-above-2**63": ([2**63 + 1], [0, 4], "above 2\\*\\*63"),
    "offset-of-3000-digits": ([1], [0, 10**3000], "an integer of 3001 digits"),
    "product-past-the-data": ([2**62] * 64, [0, 4], "span 4 bytes but shape .* needs more than the 4 bytes of the data section"),
}


@pytest.mark.parametrize("kind", _readers())
@pytest.mark.parametrize("case", sorted(HUGE_NUMBERS))
def test_huge_numbers_in_a_header_are_refused_at_once_with_a_short_message(tmp_path, kind, case) -> None:
    """Dimensions above 2**63 and ranks above 64 are refused before any product (a product of
    thousands of 4000-digit integers took hours), and no huge number is formatted into the
    message (Python refuses to format more than 4300 digits, and the message named no file)."""
    shape, offs, msg = HUGE_NUMBERS[case]
    header = {"w": {"dtype": "F32", "shape": shape, "data_offsets": offs}}
    p = _st(tmp_path / "m.safetensors", header, bytes(4))
    with pytest.raises(ValueError, match=msg) as err:
        _open(kind, p)
    assert "m.safetensors" in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 600


# ----------------------------------------------------------------------------- shard names

SHARD_NAMES = ["../../secret.safetensors", "/abs/secret.safetensors", "sub/../../secret.safetensors",
               "..", "", "a\\..\\secret.safetensors", "x\0.safetensors", "sub/model.safetensors"]


def _secret(tmp_path: Path) -> Path:
    """A valid checkpoint outside the model folder: if an index could name it, it would read."""
    p = tmp_path / "secret.safetensors"
    write_safetensors(p, {"w": np.ones((2, 2), np.float32)})
    return p


def _index(folder: Path, name: str, shard: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(json.dumps({"metadata": {}, "weight_map": {"w": shard}}))
    return p


@pytest.mark.parametrize("shard", SHARD_NAMES)
def test_a_safetensors_index_names_only_files_in_its_folder(tmp_path, shard) -> None:
    secret = _secret(tmp_path)
    shard = shard.replace("/abs/", f"{tmp_path}/")
    idx = _index(tmp_path / "model" / "sub", "model.safetensors.index.json", shard)
    (tmp_path / "model" / "sub" / "sub").mkdir()
    shutil.copy(secret, tmp_path / "model" / "sub" / "sub" / "model.safetensors")
    for source in (idx, idx.parent):
        with pytest.raises(ValueError, match="is not a plain file name in the model's folder") as err:
            resolve_source(source)
        assert str(idx) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("shard", SHARD_NAMES[:3])
def test_a_bin_index_names_only_files_in_its_folder(tmp_path, shard) -> None:
    from pickle_ops import write_innocent
    write_innocent(tmp_path / "secret.bin")
    shard = shard.replace("/abs/", f"{tmp_path}/").replace(".safetensors", ".bin")
    idx = _index(tmp_path / "a" / "model", "pytorch_model.bin.index.json", shard)
    with pytest.raises(ValueError, match="is not a plain file name") as err:
        resolve_source(idx.parent)
    assert "\n" not in str(err.value)


def test_a_system_file_is_never_opened_as_a_shard(tmp_path) -> None:
    """Before, a shard ``/etc/passwd`` was opened and its first 8 bytes printed as a length."""
    idx = _index(tmp_path / "m", "model.safetensors.index.json", "/etc/passwd")
    with pytest.raises(ValueError) as err:
        resolve_source(idx.parent)
    assert "header length" not in str(err.value) and "plain file name" in str(err.value)


@pytest.mark.parametrize("kind", [k for k in _readers() if k.values[0] != "local"])
@pytest.mark.parametrize("shard", SHARD_NAMES[:3])
def test_a_remote_index_names_only_files_in_its_folder(tmp_path, kind, shard) -> None:
    _secret(tmp_path)
    shard = shard.replace("/abs/", f"{tmp_path}/")
    idx = _index(tmp_path / "srv" / "model", "model.safetensors.index.json", shard)
    from neuromfa_native.io.remote import resolve_url
    if kind == "file":
        urls = [idx.resolve().as_uri(), idx.parent.resolve().as_uri()]
        for u in urls:
            with pytest.raises(ValueError, match="is not a plain file name"):
                resolve_url(u)
        return
    from range_server import RangeServer
    with RangeServer(tmp_path) as srv:
        for u in (srv.url("srv/model/model.safetensors.index.json"), srv.url("srv/model")):
            with pytest.raises(ValueError, match="is not a plain file name"):
                resolve_url(u)


def test_hub_snapshot_links_into_blobs_are_fine(tmp_path) -> None:
    """The name is checked, not where it resolves: a hub snapshot's shards are links to blobs/."""
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    write_safetensors(blobs / "abc123", {"w": np.arange(4, dtype=np.float32)})
    snap = tmp_path / "snapshots" / "rev"
    snap.mkdir(parents=True)
    (snap / "model-00001-of-00001.safetensors").symlink_to("../../blobs/abc123")
    _index(snap, "model.safetensors.index.json", "model-00001-of-00001.safetensors")
    np.testing.assert_array_equal(resolve_source(snap).get("w"), np.arange(4, dtype=np.float32))


# ----------------------------------------------------------------------------- deep JSON


def test_config_json_nested_without_end(tmp_path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    write_safetensors(d / "model.safetensors", {"w": np.ones(2, np.float32)})
    (d / "config.json").write_bytes(b'{"a": ' + DEEP + b"}")
    with pytest.raises(ValueError, match=r"config\.json.*nested too deeply") as err:
        resolve_source(d)
    assert "\n" not in str(err.value)


def test_an_index_nested_without_end(tmp_path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.safetensors.index.json").write_bytes(DEEP)
    with pytest.raises(ValueError, match=r"index\.json.*nested too deeply"):
        resolve_source(d)


def test_an_eval_file_nested_without_end(tmp_path) -> None:
    import neuromfa_native as nm
    p = tmp_path / "results_step1000.json"
    p.write_bytes(b'{"results": ' + DEEP + b"}")
    with pytest.raises(ValueError, match=r"results_step1000\.json.*nested too deeply") as err:
        nm.read_evals(p)
    assert "\n" not in str(err.value)
