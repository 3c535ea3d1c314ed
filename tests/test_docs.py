"""Every public name is documented: a numpydoc docstring with the sections a user needs, and an
entry in the API reference (docs/api/api.rst). New public functions cannot skip either."""
import inspect
import re
from pathlib import Path

import pytest

import neuromfa_native as nm

API_RST = Path(__file__).resolve().parents[1] / "docs" / "api" / "api.rst"
FUNCTION_SECTIONS = ("Parameters", "Returns", "Raises", "Examples")
# Compiled functions of the C++ core take their docstrings from cpp/bindings.cpp; they have no
# parameters and raise nothing, so only Returns and Examples are required of them.
COMPILED = {"openmp_enabled"}
COMPILED_SECTIONS = ("Returns", "Examples")
PUBLIC = [n for n in nm.__all__ if n != "__version__"]


def _sections(doc: str) -> set:
    return set(re.findall(r"^([A-Z][A-Za-z ]+)\n-{3,}$", doc, re.M))


def test_all_is_what_the_package_exports():
    assert len(set(nm.__all__)) == len(nm.__all__)
    assert all(hasattr(nm, name) for name in nm.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_has_a_numpydoc_docstring(name):
    obj = getattr(nm, name)
    if not callable(obj):  # a constant (a tuple of names): documented by its ``.. data::`` entry in api.rst
        return
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    if inspect.isclass(obj):
        return
    if name in COMPILED:
        missing = [s for s in COMPILED_SECTIONS if s not in _sections(doc)]
    else:
        missing = [s for s in FUNCTION_SECTIONS if s not in _sections(doc)]
    if name not in COMPILED and not inspect.signature(obj).parameters:
        missing = [s for s in missing if s != "Parameters"]
    assert not missing, f"{name}'s docstring lacks the numpydoc section(s) {missing}"
    examples = doc.split("Examples\n--------", 1)[1]
    assert ">>> " in examples, f"{name}'s Examples section has no doctest"


def test_every_public_name_is_in_the_api_reference():
    listed = set(re.findall(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s*$", API_RST.read_text(), re.M))
    listed |= set(re.findall(r"^\.\. (?:data|autodata|autofunction|autoclass):: ([A-Za-z_.]+)", API_RST.read_text(),
                             re.M))
    listed = {n.rsplit(".", 1)[-1] for n in listed}
    missing = sorted(set(nm.__all__) - listed)
    assert not missing, f"names of neuromfa_native.__all__ missing from docs/api/api.rst: {missing}"


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_compiled_functions_examples_run(name):
    # ``--doctest-modules`` collects only .py files, so the examples of the C++ core's docstrings
    # (cpp/bindings.cpp) are run here.
    import doctest

    tests = doctest.DocTestFinder(recurse=False).find(getattr(nm, name), name, globs={})
    assert tests and tests[0].examples, f"{name}'s docstring has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
