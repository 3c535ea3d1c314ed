"""What to say about a model no family serves: the block tensors found, the families whose layout
fits them anyway (name-tolerant: they differ only in norms and extras), and a custom layer map
to paste as ``layout=``.

:class:`UnsupportedArchitecture` is the ``ValueError`` the registry raises; its message is one
line, its attributes hold the pieces (``neuromfa info`` prints them, one per line).  The
proposed map is a guess from tensor names and shapes (attention inputs -> attention output ->
MLP inputs -> MLP output -> the next block), checked to build; it cannot express attention's
head wiring or a gated MLP's product (no synthetic blocks), so a family layout that fits is
always the better answer.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from .base import first_prefix
from .custom import CUSTOM_HELP, custom_layout

__all__ = ["UnsupportedArchitecture", "block_structure", "propose_layer_map"]

_BLOCK = re.compile(r"^(.*?[._])(\d+)\.(.+)$")
_ATTN_IN = {"q", "k", "v", "wq", "wk", "wv", "wqkv", "qkv", "query", "key", "value", "c_attn", "att_proj", "in_proj",
            "query_key_value", "q_proj", "k_proj", "v_proj", "qkv_proj"}
_ATTN_OUT = {"o_proj", "out_proj", "attn_out", "o"}
_MLP_IN = {"up_proj", "gate_proj", "gate_up_proj", "fc1", "fc_in", "c_fc", "w1", "w3", "wi", "dense_h_to_4h", "ff_proj",
           "up", "gate"}
_MLP_OUT = {"down_proj", "fc2", "fc_out", "w2", "dense_4h_to_h", "ff_out", "down"}
_EITHER = {"c_proj", "dense", "wo"}  # attention output or MLP output, by the module they sit in
_MLP_CTX = {"mlp", "ffn", "feed_forward", "feedforward", "ff", "moe"}


class UnsupportedArchitecture(ValueError):
    """No family serves the model.  ``fits``: families whose layout fits its tensors;
    ``prefix``/``n_blocks``/``block_tensors``: the block structure found (``[(name after the
    prefix, shape)]`` of block 0); ``proposal``: a pastable ``layout=[...]`` (or None)."""

    def __init__(self, message: str, fits: Sequence[str] = (), prefix: str | None = None, n_blocks: int = 0,
                 block_tensors: Sequence[tuple] = (), proposal: str | None = None):
        super().__init__(message)
        self.fits, self.prefix, self.n_blocks = tuple(fits), prefix, n_blocks
        self.block_tensors, self.proposal = tuple(block_tensors), proposal

    def report(self) -> str:
        """The pieces, one per line (what ``neuromfa info`` prints)."""
        lines = [str(self).split("; ", 1)[0]]
        if self.fits:
            lines.append("its tensors fit the layout of: " + ", ".join(self.fits) + f" ({_use(self.fits[0])})")
        if self.prefix is not None:
            lines.append(f"block tensors ({self.n_blocks} blocks under {self.prefix!r}, block 0 shown):")
            lines += [f"  {_show(n)}  {'x'.join(map(str, s)) or 'scalar'}" for n, s in self.block_tensors]
        if self.proposal:
            lines.append("proposed custom layer map (a guess from names and shapes: check it):")
            lines.append("  " + self.proposal)
        return "\n".join(lines)


def _show(name: str) -> str:
    """A tensor name for a terminal: as it is, or quoted (``repr``) if it holds control characters."""
    return name if name.isprintable() else repr(name)


def block_structure(names: Sequence[str], shapes: Callable[[str], tuple]) -> tuple[str, int, list] | None:
    """``(prefix with {b}, number of blocks, [(name after the prefix, shape)] of block 0)`` of the
    repeated blocks among ``names`` (the prefix with the most block indices), or None."""
    blocks: dict[str, set] = {}
    for n in names:
        m = _BLOCK.match(n)
        if m:
            blocks.setdefault(m.group(1), set()).add(int(m.group(2)))
    if not blocks:
        return None
    prefix = max(blocks, key=lambda p: (len(blocks[p]), -len(p)))
    first = min(blocks[prefix])
    head = f"{prefix}{first}."
    tensors = [(n[len(head):], tuple(shapes(n))) for n in sorted(names) if n.startswith(head)]
    return prefix + "{b}.", max(blocks[prefix]) + 1, tensors


def _role(name: str) -> str | None:
    """``attn_in``, ``attn_out``, ``mlp_in``, ``mlp_out`` or None, from the tensor's module name."""
    parts = name.lower().split(".")
    last = parts[-2] if parts[-1] == "weight" and len(parts) > 1 else parts[-1]
    in_mlp = bool(_MLP_CTX & set(parts[:-1]))
    for role, names in (("attn_in", _ATTN_IN), ("attn_out", _ATTN_OUT), ("mlp_in", _MLP_IN), ("mlp_out", _MLP_OUT)):
        if last in names:
            return role
    if last in _EITHER:
        return "mlp_out" if in_mlp else "attn_out"
    return None


def _short(name: str) -> str:
    parts = [p for p in name.split(".") if p not in ("weight", "self_attn", "attn", "attention", "mlp", "self")]
    return "_".join(parts) or name


def _entries(tensors: Sequence[tuple]) -> list[tuple[str, str, str]]:
    """``[(name, input layer, output layer)]`` of one block, layers as ``{b}.x`` / ``{n}.in``."""
    mats = [(n, s, _role(n)) for n, s in tensors if len(s) == 2 and _role(n)]
    attn_in = sorted(((n, s) for n, s, r in mats if r == "attn_in"),  # q, then k, then v
                     key=lambda ns: "qkv".find(_short(ns[0])[:1]) % 4)
    attn_out = [(n, s) for n, s, r in mats if r == "attn_out"]
    mlp_in = [(n, s) for n, s, r in mats if r == "mlp_in"]
    mlp_out = [(n, s) for n, s, r in mats if r == "mlp_out"]
    out: list[tuple[str, str, str]] = []
    sizes: dict[str, int] = {}

    def feed(n_in: int, fallback: str, pool: Sequence[str]) -> str:
        return next((x for x in pool if sizes.get(x) == n_in), fallback)

    stream = "{b}.in"
    for n, (o, _) in attn_in:
        sizes["{b}." + _short(n)] = o
        out.append((n, stream, "{b}." + _short(n)))
    if attn_out:
        for n, (_, i) in attn_out:
            out.append((n, feed(i, stream, [e[2] for e in out]), "{b}.attn" if mlp_in or mlp_out else "{n}.in"))
        stream = "{b}.attn" if mlp_in or mlp_out else stream
    pool: list[str] = []
    for n, (o, _) in mlp_in:
        layer = next((x for x in pool if sizes[x] == o), "{b}." + _short(n))
        sizes[layer] = o
        pool.append(layer)
        out.append((n, stream, layer))
    for n, (_, i) in mlp_out:
        out.append((n, feed(i, stream, pool), "{n}.in"))
    return out


def propose_layer_map(names: Sequence[str], shapes: Callable[[str], tuple]) -> str | None:
    """A pastable ``layout=[...]`` for every block, checked to build, or None."""
    found = block_structure(names, shapes)
    if found is None:
        return None
    prefix, nb, tensors = found
    entries = _entries(tensors)
    if not entries or "{" in prefix.replace("{b}", "") or any("{" in t or "}" in t for t, _, _ in entries):
        return None  # a name with braces would not survive str.format
    full = [(prefix.format(b=b) + t, i.format(b=b, n=b + 1), o.format(b=b, n=b + 1))
            for b in range(nb) for t, i, o in entries]
    try:
        custom_layout(full, shapes, set(names))
    except ValueError:
        return None
    return (f"layout=[({prefix + '{t}'!r}.format(b=b, t=t), i.format(b=b, n=b + 1), o.format(b=b, n=b + 1)) "
            f"for b in range({nb}) for t, i, o in {entries!r}]")


def _use(arch: str) -> str:
    return (f"pass architecture={arch!r} to build_nin/describe, or give the source a config with "
            f"model_type {arch!r}: resolve_source(source, config={{..., 'model_type': {arch!r}}})")


def unsupported(what: str, supported: Sequence[str], names: Sequence[str], shapes: Callable[[str], tuple] | None,
                fits: Sequence[str] = (), kind: str = "unsupported") -> UnsupportedArchitecture:
    """The error for a model no family serves (``what``: e.g. ``"model_type 't5'"``, or why the
    tensor names were not recognised)."""
    found = block_structure(names, shapes) if shapes is not None else None
    proposal = propose_layer_map(names, shapes) if shapes is not None else None
    msg = f"{kind} architecture ({what}); supported: {list(supported)}"
    if fits:
        msg += f"; its tensors fit the layout of {list(fits)}: {_use(fits[0])}"
    else:
        msg += "; pass architecture=... if its tensors follow one of them"
    if found is not None:
        mats = [f"{_show(n)} {'x'.join(map(str, s))}" for n, s in found[2] if len(s) >= 2]
        kinds = Counter(len(s) for _, s in found[2])
        msg += (f"; block tensors found ({found[1]} blocks under {found[0]!r}; block 0: {len(mats)} matrices, "
                f"{kinds.get(1, 0) + kinds.get(0, 0)} vectors): {', '.join(mats[:24])}"
                + (" ..." if len(mats) > 24 else ""))
    msg += (f"; or pass a custom layer map (a guess from names and shapes: check it): {proposal}" if proposal
            else f"; or {CUSTOM_HELP}")
    prefix, nb, tensors = found if found is not None else (None, 0, [])
    return UnsupportedArchitecture(msg, fits, prefix, nb, tensors, proposal)


def fitting_families(families: Mapping[str, Any], config: Mapping[str, Any], names: set[str],
                     shapes: Callable[[str], tuple], check: Callable) -> list[str]:
    """Model types (one per family) whose default layout builds and checks against the tensors
    (only families whose probe tensor is there are tried)."""
    fits = []
    for fam in families.values():
        if first_prefix(names, fam.tensor_prefixes, fam.probe) is None:
            continue
        cfg = dict(config, model_type=fam.model_types[0])
        try:
            lay = fam.build(cfg, names, shapes, fam.layout_for["default"])
            check(lay, names, shapes)
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError):
            continue
        fits.append(fam.model_types[0])
    return fits
