"""``pytorch_model.bin`` read without torch, as an attacker writes it (docs/bad-inputs.md).

Each hostile file is refused with a one-line ``ValueError`` naming it, and nothing it does
outlives its reading: after every one of them an innocent file read in the same process gives
the same bits as before.  Compressed entries are refused before anything is decompressed, and
views whose strides repeat their storage never allocate beyond the storage and the rows read.
Where torch is installed, ``torch.load(weights_only=True)`` is asked too: it refuses the same
files.  The fuzz campaign at the end throws random opcode sequences and random damage at the
reader (bounded in count and time) and asks for the same.
"""
from __future__ import annotations

import bz2
import pickle
import subprocess
import sys
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pickle_ops import (
    INNOCENT_V,
    INNOCENT_W,
    dict_of,
    glob,
    integer,
    state_dict,
    tensor,
    text,
    tup,
    write_bin,
    write_innocent,
)

from neuromfa_native.io.sources import resolve_source
from neuromfa_native.io.ranged import TensorEntry
from neuromfa_native.io.torch_zip import open_torch_zip

ONE = {"0": np.ones(4, np.float16).tobytes()}
PLAIN = {"w": tensor("0", "HalfStorage", 4, (2, 2), (2, 1))}


def _innocent_reads_the_same(path) -> None:
    src = open_torch_zip(path)
    for name, want in (("w", INNOCENT_W), ("wt", INNOCENT_W.T), ("v", INNOCENT_V)):
        got = src.get(name)
        assert got.dtype == want.dtype and got.tobytes() == np.ascontiguousarray(want).tobytes(), name
    assert src.info("w").dtype == "F16" and src.info("v").dtype == "F32"
    np.testing.assert_array_equal(src.get_slice("w", np.array([2, 0])), INNOCENT_W[[2, 0]])


def _torch_refuses(path) -> None:
    """Where torch is installed, torch.load(weights_only=True) is the yardstick: it refuses too."""
    try:
        import torch
    except ImportError:
        return
    with pytest.raises(Exception):  # noqa: B017 - torch raises UnpicklingError or RuntimeError
        torch.load(path, weights_only=True)


def _slot_build(target: bytes, slots: dict) -> bytes:
    """``target`` then ``BUILD (None, {slot: value})`` (pickle's slot state), result popped."""
    return target + tup(pickle.NONE, dict_of(slots)) + pickle.BUILD + pickle.POP


#: Pickles whose only purpose is to change the reader for the files after them.
HOSTILE = {
    # the storage type stand-in: make every later HalfStorage decode as float32
    "build-storage-type": state_dict(PLAIN, _slot_build(glob("torch", "HalfStorage"), {"code": text("F32")})),
    # ... and its torch name (the next storage of that type is then "FloatStorage")
    "build-storage-name": state_dict(PLAIN, _slot_build(glob("torch", "HalfStorage"),
                                                        {"torch_name": text("FloatStorage")})),
    # the rebuild function's defaults: every later tensor would carry "metadata"
    "build-rebuild-defaults": state_dict(PLAIN, _slot_build(
        glob("torch._utils", "_rebuild_tensor_v2"),
        {"__defaults__": tup(pickle.NEWFALSE, pickle.NONE, dict_of({"x": integer(1)}))})),
    "build-parameter-defaults": state_dict(PLAIN, _slot_build(
        glob("torch._utils", "_rebuild_parameter"), {"__defaults__": tup(pickle.NEWTRUE, dict_of({"x": integer(1)}))})),
    # BUILD with a plain dict state on a function: its __dict__
    "build-function-dict": state_dict(PLAIN, glob("torch._utils", "_rebuild_tensor_v2")
                                      + dict_of({"code": text("F32")}) + pickle.BUILD + pickle.POP),
    # the same, and then the file is refused anyway (a bad global after the change)
    "build-then-refused": state_dict({"x": glob("os", "system")}, _slot_build(glob("torch", "HalfStorage"),
                                                                            {"code": text("F64")})),
    # NEWOBJ on a stand-in and INST / OBJ (protocol 0/1 object creation)
    "newobj-storage-type": state_dict(PLAIN, glob("torch", "HalfStorage") + pickle.EMPTY_TUPLE + pickle.NEWOBJ
                                      + pickle.POP),
    "inst-ordereddict": state_dict(PLAIN, pickle.MARK + b"icollections\nOrderedDict\n" + pickle.POP),
    "obj-rebuild": state_dict(PLAIN, pickle.MARK + glob("collections", "OrderedDict") + pickle.OBJ + pickle.POP),
    # BUILD on a list (torch allows BUILD only on tensors, parameters and OrderedDict)
    "build-list": state_dict(PLAIN, pickle.EMPTY_LIST + dict_of({"a": integer(1)}) + pickle.BUILD + pickle.POP),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_nothing_a_file_does_outlives_its_reading(tmp_path, name) -> None:
    innocent = write_innocent(tmp_path / "innocent.bin")
    _innocent_reads_the_same(innocent)
    bad = write_bin(tmp_path / f"{name}.bin", HOSTILE[name], ONE)
    with pytest.raises(ValueError, match=rf"^{tmp_path}/{name}\.bin: refused") as err:
        resolve_source(bad)
    assert "\n" not in str(err.value)
    _innocent_reads_the_same(innocent)  # bit-identical after the hostile file
    _torch_refuses(bad)


def test_every_hostile_file_in_one_process_then_the_innocent_one(tmp_path) -> None:
    innocent = write_innocent(tmp_path / "innocent.bin")
    for name, pkl in HOSTILE.items():
        with pytest.raises(ValueError):
            open_torch_zip(write_bin(tmp_path / f"{name}.bin", pkl, ONE))
    _innocent_reads_the_same(innocent)


def test_the_ordered_dict_metadata_torch_writes_is_read(tmp_path) -> None:
    """``state_dict()`` is an OrderedDict with a ``_metadata`` attribute: torch pickles it as
    ``OrderedDict()`` + ``BUILD {'_metadata': ...}``, which both readers accept."""
    meta = dict_of({"_metadata": glob("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE})
    body = text("w") + tensor("0", "HalfStorage", 4, (2, 2), (2, 1))
    pkl = (pickle.PROTO + b"\x02" + glob("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
           + meta + pickle.BUILD + pickle.MARK + body + pickle.SETITEMS + pickle.STOP)
    p = write_bin(tmp_path / "m.bin", pkl, ONE)
    np.testing.assert_array_equal(open_torch_zip(p).get("w"), np.ones((2, 2), np.float16))
    try:
        import torch
    except ImportError:
        return
    assert torch.load(p, weights_only=True)["w"].numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_a_real_state_dict_with_metadata_and_parameters(tmp_path) -> None:
    torch = pytest.importorskip("torch", reason="writes the file with torch.save")
    lin = torch.nn.Linear(4, 3)
    sd = lin.state_dict()
    assert hasattr(sd, "_metadata")
    torch.save({"a": torch.nn.Parameter(torch.ones(2, 2)), **sd}, tmp_path / "p.bin")
    src = open_torch_zip(tmp_path / "p.bin")
    np.testing.assert_array_equal(src.get("weight"), sd["weight"].numpy())
    np.testing.assert_array_equal(src.get("a"), np.ones((2, 2), np.float32))


# ----------------------------------------------------------------------------- compressed entries


def _open(z, name, method):
    info = zipfile.ZipInfo(name)
    info.compress_type = method
    return z.open(info, "w")


def _bomb(path, entry: str, method: int, size: int):
    """A torch zip whose ``entry`` holds ``size`` bytes of padding, compressed by ``method``."""
    stored = zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w") as z:
        with _open(z, "archive/data.pkl", method if entry == "data.pkl" else stored) as fh:
            if entry == "data.pkl":  # a pickle of `size` bytes: NONE, POP, NONE, POP, ...
                fh.write(pickle.PROTO + b"\x02" + pickle.EMPTY_DICT)
                chunk = (pickle.NONE + pickle.POP) * (1 << 19)
                for _ in range(size // len(chunk)):
                    fh.write(chunk)
                fh.write(pickle.STOP)
            else:
                fh.write(state_dict({}))
        with _open(z, "archive/byteorder", method if entry == "byteorder" else stored) as fh:
            if entry == "byteorder":
                chunk = b" " * (1 << 20)
                for _ in range(size // len(chunk)):
                    fh.write(chunk)
            fh.write(b"little")
    return path


@pytest.mark.parametrize(("entry", "method"), [("data.pkl", zipfile.ZIP_BZIP2), ("data.pkl", zipfile.ZIP_DEFLATED),
                                               ("byteorder", zipfile.ZIP_DEFLATED),
                                               ("byteorder", zipfile.ZIP_BZIP2)])
@pytest.mark.slow
def test_a_compressed_entry_is_refused_before_it_is_decompressed(tmp_path, entry, method) -> None:
    p = _bomb(tmp_path / "bomb.bin", entry, method, 64 << 20)
    assert p.stat().st_size < 200_000  # a small file that would decompress to 64 MB
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"{entry}' is compressed .*torch writes every entry stored"):
            resolve_source(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"reading the refused file took {peak} bytes"


def test_an_entry_larger_than_it_says_is_not_read_past_its_size(tmp_path) -> None:
    """A stored ``data.pkl`` whose central directory under-states its size: the pickle is read
    to the declared size only (and then fails to parse), never past it."""
    p = write_bin(tmp_path / "m.bin", state_dict(PLAIN), ONE)
    raw = bytearray(p.read_bytes())
    at = raw.find(b"PK\x01\x02")  # the first central directory entry: archive/data.pkl
    assert raw[at + 46: at + 46 + 16] == b"archive/data.pkl"
    raw[at + 20: at + 28] = (10).to_bytes(4, "little") * 2
    (tmp_path / "short.bin").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"short\.bin: .*(size|CRC|pickle|refused)"):
        open_torch_zip(tmp_path / "short.bin")


def test_a_stored_entry_with_a_wrong_crc_is_refused(tmp_path) -> None:
    p = write_bin(tmp_path / "m.bin", state_dict(PLAIN), ONE)
    raw = bytearray(p.read_bytes())
    at = raw.find(pickle.STOP, raw.find(b"archive/data.pkl") + 16)
    raw[at - 1] ^= 0x01  # a byte inside the pickle: the CRC no longer matches
    (tmp_path / "crc.bin").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"crc\.bin: .*CRC"):
        open_torch_zip(tmp_path / "crc.bin")


# ----------------------------------------------------------------------------- amplifying views


def test_a_zero_stride_view_is_not_materialised_at_its_logical_size(tmp_path) -> None:
    row = np.arange(64, dtype=np.float16)
    pkl = state_dict({"w": tensor("0", "HalfStorage", 64, (1 << 20, 64), (0, 1))})
    p = write_bin(tmp_path / "z.bin", pkl, {"0": row.tobytes()})
    assert p.stat().st_size < 1000
    src = resolve_source(p)
    assert src.shape("w") == (1 << 20, 64)
    tracemalloc.start()
    try:
        one = src.get_slice("w", np.array([123456]))
        few = src.get_slice("w", np.array([7, 3, 7]), np.array([0, 63]))
        whole = src.get("w")  # a read-only view over the storage, not 128 MB
        n_bytes = 0
        for k, chunk in enumerate(src.byte_chunks("w")):
            n_bytes += len(chunk)
            if k == 0:
                first = bytes(chunk[:128])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20, f"reading rows of a 128-byte storage took {peak} bytes"
    np.testing.assert_array_equal(one, row[None, :])
    np.testing.assert_array_equal(few, row[[0, 63]][None, :].repeat(3, 0))
    assert whole.shape == (1 << 20, 64) and not whole.flags.writeable
    np.testing.assert_array_equal(whole[-1], row)
    assert n_bytes == (1 << 20) * 64 * 2 and first == row.tobytes()


def test_an_overlapping_view_reads_like_torch(tmp_path) -> None:
    torch = pytest.importorskip("torch", reason="torch.save writes the view")
    base = torch.arange(20, dtype=torch.float32)
    views = {"rep": base[:4].expand(6, 4), "win": base.as_strided((5, 4), (3, 1)), "t": base.view(4, 5).t()}
    torch.save(views, tmp_path / "v.bin")
    src = open_torch_zip(tmp_path / "v.bin")
    for name, t in views.items():
        want = t.contiguous().numpy()
        np.testing.assert_array_equal(src.get(name), want)
        np.testing.assert_array_equal(src.get_slice(name, np.array([3, 1])), want[[3, 1]])
        assert b"".join(bytes(c) for c in src.byte_chunks(name)) == want.tobytes()


@pytest.mark.parametrize(("shape", "stride", "numel"), [
    ((2**62 + 1, 4), (4, 1), 4),  # the product wraps at 2**64 in int64
    ((2**63, 2), (2, 1), 4),
    ((3, 2**70), (1, 0), 4),
])
def test_shapes_whose_product_wraps_are_refused(tmp_path, shape, stride, numel) -> None:
    pkl = state_dict({"w": tensor("0", "FloatStorage", numel, shape, stride)})
    p = write_bin(tmp_path / "big.bin", pkl, {"0": bytes(4 * numel)})
    with pytest.raises(ValueError, match="reaches beyond its storage|too large for any array"):
        open_torch_zip(p)


BIG = (1 << 2030) + 1  # 612 digits: a LONG1 of 255 bytes

#: (shape, stride, storage offset, numel, what the message says): numbers beyond any array
HUGE_NUMBERS = {
    "8-dims-of-612-digits": ((BIG,) * 8, (1,) * 8, 0, 4, "size has a dimension above 2\\*\\*63, .*: an integer of 612 digits"),
    "1000-dims-of-612-digits": ((BIG,) * 1000, (1,) * 1000, 0, 4, "size has 1000 dimensions, more than 64"),
    "65-dims": ((1,) * 65, (1,) * 65, 0, 4, "size has 65 dimensions, more than 64"),
    "stride-of-612-digits": ((2, 2), (BIG, 1), 0, 4, "stride has a dimension above 2\\*\\*63, .*: an integer of 612 digits"),
    "offset-of-612-digits": ((2, 2), (2, 1), BIG, 4, "storage offset is above 2\\*\\*63 elements: an integer of 612 digits"),
    "numel-of-612-digits": ((2, 2), (2, 1), 0, BIG, "storage .* above 2\\*\\*63 elements: an integer of 612 digits"),
    "64-dims-of-2**62": ((2**62,) * 64, (0,) * 64, 0, 4, "too large for any array"),
}


@pytest.mark.parametrize("case", sorted(HUGE_NUMBERS))
def test_huge_numbers_in_a_pickle_are_refused_at_once_with_a_short_message(tmp_path, case) -> None:
    """LONG1 sizes, strides and offsets above 2**63 or ranks above 64 are refused before any
    product (a product of thousands of 612-digit integers took hours), and no huge number is
    formatted into the message (Python refuses more than 4300 digits; the message named no file)."""
    shape, stride, offset, numel, msg = HUGE_NUMBERS[case]
    pkl = state_dict({"w": tensor("0", "FloatStorage", numel, shape, stride, offset)})
    p = write_bin(tmp_path / "big.bin", pkl, {"0": bytes(16)})
    with pytest.raises(ValueError, match=rf"^{tmp_path}/big\.bin: .*{msg}") as err:
        open_torch_zip(p)
    assert "\n" not in str(err.value) and len(str(err.value)) < 600


@pytest.mark.parametrize(("shape", "strides"), [((2**70,), None), ((1,) * 65, None), ((2, 2), (2**70, 1))])
def test_a_tensor_entry_refuses_numbers_beyond_any_array(shape, strides) -> None:
    with pytest.raises(ValueError, match="above 2\\*\\*63|more than 64"):
        TensorEntry("w", "F32", shape, 0, strides)


def test_a_bool_offset_or_size_is_refused(tmp_path) -> None:
    pid = glob("torch._utils", "_rebuild_tensor_v2") + tup(
        tup(text("storage"), glob("torch", "HalfStorage"), text("0"), text("cpu"), integer(4)) + pickle.BINPERSID,
        pickle.NEWTRUE, tup(integer(2), pickle.NEWTRUE), tup(integer(1), integer(1)), pickle.NEWFALSE,
        glob("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE) + pickle.REDUCE
    p = write_bin(tmp_path / "b.bin", state_dict({"w": pid}), ONE)
    with pytest.raises(ValueError, match="non-negative integer"):
        open_torch_zip(p)


def test_a_deeply_nested_tuple_used_as_a_dict_key_is_refused_not_a_crash(tmp_path) -> None:
    """A dict key made of a tuple nested 200 000 deep: hashing it recursed in C and killed the
    interpreter (SIGSEGV). Read in a child process, so a regression shows as a crash."""
    pkl = pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.EMPTY_TUPLE + pickle.TUPLE1 * 200_000 + pickle.NONE \
        + pickle.SETITEM + pickle.STOP
    p = write_bin(tmp_path / "deep.bin", pkl, {})
    code = ("import sys\nfrom neuromfa_native.io.torch_zip import open_torch_zip\n"
            "try:\n    open_torch_zip(sys.argv[1])\nexcept ValueError as e:\n    print(e)\n")
    run = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, (run.returncode, run.stderr[-500:])
    assert run.stdout.startswith(f"{p}: refused") and "nested deeper than" in run.stdout
    assert run.stdout.count("\n") == 1


def _nested(depth: int, opcode: bytes) -> bytes:
    """A container nested ``depth`` levels: tuples (TUPLE1) or lists (EMPTY_LIST ... APPEND)."""
    if opcode == pickle.TUPLE1:
        return pickle.EMPTY_TUPLE + pickle.TUPLE1 * (depth - 1)
    return pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1)


@pytest.mark.parametrize("opcode", [pickle.TUPLE1, pickle.APPEND], ids=["tuples", "lists"])
def test_containers_nested_deeper_than_a_state_dict_needs_are_refused(tmp_path, opcode) -> None:
    def wrapped(depth):  # {"state_dict": {"w": tensor}, "extra": <nested depth levels>}
        sd = dict_of({"w": tensor("0", "HalfStorage", 4, (2, 2), (2, 1))})
        return (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK + text("state_dict") + sd + text("extra")
                + _nested(depth, opcode) + pickle.SETITEMS + pickle.STOP)
    ok = write_bin(tmp_path / "ok.bin", wrapped(20), ONE)
    assert open_torch_zip(ok).tensor_names() == ["w"]
    bad = write_bin(tmp_path / "bad.bin", wrapped(40), ONE)
    with pytest.raises(ValueError, match=rf"^{tmp_path}/bad\.bin: refused.*nested deeper than 32 levels") as err:
        open_torch_zip(bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("key", [pickle.EMPTY_TUPLE, integer(1) + pickle.TUPLE1, pickle.NONE, pickle.BINFLOAT + bytes(8)],
                         ids=["empty-tuple", "tuple", "none", "float"])
def test_a_dict_key_that_is_not_a_string_or_an_integer_is_refused(tmp_path, key) -> None:
    pkl = pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + key + integer(1) + pickle.SETITEM + pickle.STOP
    with pytest.raises(ValueError, match=r"refused.*dict key .* not a string or an integer"):
        open_torch_zip(write_bin(tmp_path / "k.bin", pkl, {}))


def test_integer_dict_keys_are_read(tmp_path) -> None:
    """Training checkpoints key optimizer states by integers: still read."""
    opt = pickle.EMPTY_DICT + integer(0) + integer(1) + pickle.SETITEM
    pkl = (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK + text("state_dict")
           + dict_of({"w": tensor("0", "HalfStorage", 4, (2, 2), (2, 1))}) + text("opt") + opt + pickle.SETITEMS
           + pickle.STOP)
    assert open_torch_zip(write_bin(tmp_path / "o.bin", pkl, ONE)).tensor_names() == ["w"]


# ----------------------------------------------------------------------------- fuzz campaign

#: Pieces of pickles: benign ones, opcodes in odd places, hostile ones.
PIECES = [
    pickle.NONE, pickle.NEWTRUE, pickle.NEWFALSE, pickle.EMPTY_TUPLE, pickle.EMPTY_LIST, pickle.EMPTY_DICT,
    pickle.EMPTY_SET, pickle.MARK, pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.POP,
    pickle.POP_MARK, pickle.DUP, pickle.BUILD, pickle.REDUCE, pickle.NEWOBJ, pickle.SETITEM, pickle.SETITEMS,
    pickle.APPEND, pickle.APPENDS, pickle.BINPERSID, pickle.BINPUT + b"\x00", pickle.BINGET + b"\x00",
    pickle.LONG_BINGET + b"\xff\xff\xff\x7f", pickle.STOP, pickle.OBJ, pickle.FRAME + bytes(8),
    pickle.STACK_GLOBAL, pickle.SHORT_BINUNICODE + b"\x01a", pickle.BINBYTES + b"\xff\xff\xff\x7f",
    integer(-1), integer(2**70), integer(3), text("w"), text("storage"), text("0"), text("F32"),
    glob("torch", "HalfStorage"), glob("torch", "FloatStorage"), glob("torch", "Size"),
    glob("torch._utils", "_rebuild_tensor_v2"), glob("torch._utils", "_rebuild_parameter"),
    glob("collections", "OrderedDict"), glob("os", "system"), glob("builtins", "getattr"),
    glob("torch", "UntypedStorage"), tensor("0", "HalfStorage", 4, (2, 2), (2, 1)),
    tensor("0", "HalfStorage", 4, (2, 2), (0, 0)), tensor("1", "FloatStorage", 2**40, (2**20, 2**20), (2**20, 1)),
    tup(pickle.NONE, dict_of({"code": text("F32")})),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.sampled_from(PIECES), max_size=24), st.booleans())
@pytest.mark.slow
def test_fuzz_random_pickles_give_a_value_error_or_plain_tensors(tmp_path_factory, pieces, wrap) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    innocent = write_innocent(tmp / "innocent.bin")
    body = b"".join(pieces)
    pkl = state_dict({"w": body}) if wrap else pickle.PROTO + b"\x02" + body + pickle.STOP
    p = write_bin(tmp / "f.bin", pkl, {"0": bytes(8), "1": bytes(8)})
    try:
        src = open_torch_zip(p)
    except ValueError as exc:
        assert str(exc).startswith(str(p)) and "\n" not in str(exc)
    else:
        for name in src.tensor_names():
            e = src.info(name)
            assert e.span[1] <= p.stat().st_size
    _innocent_reads_the_same(innocent)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       st.one_of(st.none(), st.integers(0, 10**6)))
def test_fuzz_damaged_archives_give_a_value_error(tmp_path_factory, flips, cut) -> None:
    tmp = tmp_path_factory.mktemp("damage")
    good = write_innocent(tmp / "innocent.bin").read_bytes()
    raw = bytearray(good)
    for at, value in flips:
        raw[at % len(raw)] = value
    if cut is not None:
        raw = raw[: cut % len(raw)]
    p = tmp / "d.bin"
    p.write_bytes(bytes(raw))
    try:
        src = open_torch_zip(p)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    for name in src.tensor_names():
        src.get(name)  # whatever the damage left readable reads within the file


def test_zlib_and_bz2_are_what_the_bombs_use() -> None:
    """The two compressors of the bombs above shrink the padding as expected (a guard on the
    tests themselves: a bomb that does not compress would test nothing)."""
    assert len(bz2.compress(b"N0" * (1 << 20))) < 2000 and len(zlib.compress(b" " * (1 << 20))) < 2000
