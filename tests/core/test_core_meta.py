"""_core's metadata: its version is the package's, and the stub `_core.pyi` states the module's
real signatures (parameter names, order, defaults, and the kind of each type), read from the
signature line pybind11 writes at the top of every docstring."""
import ast
import importlib.metadata
import re

import pytest
from neuromfa_native import _core
from paths import ROOT

STUB = ROOT / "python" / "neuromfa_native" / "_core.pyi"
REQUIRED = "<required>"


def _stub_functions():
    tree = ast.parse(STUB.read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _core_function(name):
    """The pybind11 signature line of _core.<name>, parsed as a Python function definition."""
    first = getattr(_core, name).__doc__.splitlines()[0]
    m = re.fullmatch(rf"{name}\((.*)\) -> (.+)", first)
    assert m, f"no signature line in the docstring of _core.{name}: {first!r}"
    return ast.parse(f"def {name}({m.group(1)}) -> {m.group(2)}: ...").body[0]


def _kind(annotation):
    """A type annotation, stub or pybind11 spelling, reduced to what both can say."""
    s = ast.unparse(annotation)
    for word, kind in (("ndarray", "array"), ("NDArray", "array"), ("Sequence", "sequence"), ("List", "sequence"),
                       ("Dict", "dict"), ("dict", "dict"), ("Tuple", "tuple"), ("tuple", "tuple"),
                       ("SupportsFloat", "float"), ("float", "float"), ("SupportsInt", "int"), ("bool", "bool"),
                       ("int", "int"), ("str", "str")):
        if re.search(rf"\b{word}\b", s):
            return kind
    raise AssertionError(f"unknown annotation {s!r}")


def _signature(fn):
    a = fn.args
    assert not (a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs), f"{fn.name}: only plain parameters expected"
    defaults = [REQUIRED] * (len(a.args) - len(a.defaults)) + [ast.literal_eval(d) for d in a.defaults]
    params = [(p.arg, _kind(p.annotation), d) for p, d in zip(a.args, defaults)]
    return params, _kind(fn.returns)


def test_core_version_is_package_version():
    assert _core.__version__ == importlib.metadata.version("neuromfa-native")


def test_stub_declares_module_attributes():
    tree = ast.parse(STUB.read_text())
    names = [n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)]
    assert names == ["__version__"]
    assert all(isinstance(getattr(_core, n), str) for n in names)


@pytest.mark.parametrize("name", sorted(_stub_functions()))
def test_stub_signature_matches_module(name):
    assert _signature(_stub_functions()[name]) == _signature(_core_function(name))


def test_signature_comparison_sees_a_wrong_stub():
    wrong = ast.parse("def key_range(threshold: float, lower: float = 1.0, decimals: int = 0) -> tuple: ...").body[0]
    assert _signature(wrong) != _signature(_core_function("key_range"))
