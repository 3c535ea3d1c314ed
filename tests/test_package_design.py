"""The shape of the Python layer: one configuration, no import cycles, short functions, result
objects that compare and cannot be mutated, ``python -m neuromfa_native``, the CLI's warnings,
and the non-finite weight check of the fingerprint pass."""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import subprocess
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native import AnalysisConfig, cli
from neuromfa_native.config import DEFAULT, CorrelationConfig, command_line, defaults, flags
from neuromfa_native.io.safetensors import write_safetensors

PKG = Path(nm.__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# one configuration


def _analyze_config(argv):
    """The configuration ``neuromfa analyze x ARGV`` builds (as cmd_analyze does)."""
    from neuromfa_native.cli._common import options_from
    return AnalysisConfig(**options_from(cli.build_parser().parse_args(["analyze", "x", *argv]), AnalysisConfig))


def _help(argv, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_cli_defaults_are_the_config_defaults(capsys, monkeypatch):
    """Every option with a flag is a flag of `neuromfa analyze`; the defaults it shows and uses are
    AnalysisConfig's; the other commands take theirs from the same fields."""
    assert _analyze_config([]) == AnalysisConfig()
    text = _help(["analyze"], capsys, monkeypatch)
    cfg = AnalysisConfig()
    for name, flag in flags().items():
        assert flag.name in text, name
        value = getattr(cfg, name)
        if not isinstance(value, bool) and flag.show(value):
            assert f"{flag.help} (default: {flag.show(value)})" in text, name
    # every option but q (a list, not a flag) is a flag
    names = {f.name for f in dataclasses.fields(AnalysisConfig)}
    assert set(flags()) == names - {"q"}
    info = cli.build_parser().parse_args(["info", "x"])
    assert info.per_layer == cfg.per_layer and info.layout == cfg.layout
    sens = cli.build_parser().parse_args(["sensitivity", "x", "--out", "o"])
    assert (sens.samples, sens.n_bootstrap, sens.seed) == (defaults()["samples"], cfg.n_bootstrap, cfg.seed)
    report = cli.build_parser().parse_args(["report", "r"])
    assert (report.n_bootstrap, report.ci, report.seed, report.filter) == (None,) * 4  # the run's own
    from neuromfa_native.cli._common import options_from
    corr = cli.build_parser().parse_args(["correlate", "r", "--evals", "e"])
    assert CorrelationConfig(**options_from(corr, CorrelationConfig)) == CorrelationConfig()
    text = _help(["correlate"], capsys, monkeypatch)
    assert all(f.name in text for f in flags(CorrelationConfig).values())


def _random_config(rng) -> AnalysisConfig:
    from neuromfa_native.mfa.boxes import BOXES, DIRECTIONS
    from neuromfa_native.config import SPECTRUM_FILTERS
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    while True:
        kw = dict(per_layer=pick([None, 1, 8, 32, 64]), layout=pick(["reference", "heads", "default"]),
                  box=pick(BOXES), direction=pick(DIRECTIONS), threshold=pick([150.0, 100.0, 2.5, 150.123456789, 1e6]),
                  min_edges=pick([1, 3, 11]), decimals=pick([-2, 0, 3]), node_dimension=pick([True, False]),
                  nfd_threshold=pick([200.0, 0.5, 1234.5678]), samples=pick([1, 3, 10]), filter=pick(SPECTRUM_FILTERS),
                  n_bootstrap=pick([1, 77, 1000]), ci=pick([0.5, 0.95, 0.999]), seed=pick([0, -3, 2 ** 40]),
                  controls=[c for c in nm.CONTROLS if rng.random() < 0.4], stats=pick([True, False]),
                  by_layer=pick([True, False]))
        try:
            return AnalysisConfig(**kw)
        except ValueError:  # path boxes of the full network
            continue


def test_the_command_line_of_a_config_gives_it_back():
    """command_line (the report's reproduce command) is the inverse of the CLI's parser."""
    rng = np.random.default_rng(7)
    configs = [AnalysisConfig(), AnalysisConfig(per_layer=None), AnalysisConfig(threshold=0.1 + 150.2)]
    configs += [_random_config(rng) for _ in range(60)]
    for cfg in configs:
        args, notes = command_line(cfg)
        assert notes == [] and _analyze_config(args) == cfg, (cfg, args)
    assert command_line(AnalysisConfig()) == ([], [])
    args, notes = command_line(AnalysisConfig(samples=[0, 2], q=[-1, 0, 1], layout=[("w", "a", "b")]))
    assert args == [] and notes == ["layout: only from Python", "q -1.0,0.0,1.0: only from Python",
                                    "samples 0,2: only from Python"]


def test_the_sensitivity_grid_varies_the_flags_that_say_so():
    from neuromfa_native.report.compare import VARY, parse_vary
    assert set(VARY) == {n for n, f in flags().items() if f.vary}
    assert {"threshold", "per_layer", "box", "samples"} <= set(VARY) and "seed" not in VARY
    assert parse_vary(["nfd-threshold=100,2e2", "box=path", "per-layer=full,8"]) == {
        "nfd_threshold": [100.0, 200.0], "box": ["path"], "per_layer": [None, 8]}
    with pytest.raises(ValueError, match="box must be one of edge, path"):
        parse_vary(["box=cube"])


def test_cli_choices_come_from_the_tables():
    from neuromfa_native.mfa.boxes import BOX_TYPES
    a = cli.build_parser()._subparsers._group_actions[0].choices["analyze"]
    box = next(x for x in a._actions if x.dest == "box")
    assert tuple(box.choices) == tuple(BOX_TYPES)


def test_config_is_frozen_validated_and_round_trips():
    cfg = AnalysisConfig(per_layer=8, samples=[2, 0], layout=[["w", "a", "b"]], q=[-1, 0, 1])
    assert cfg.samples == (2, 0) and cfg.layout == (("w", "a", "b"),) and cfg.q == (-1.0, 0.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.threshold = 3.0  # type: ignore[misc]
    assert AnalysisConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    assert AnalysisConfig.from_json(cfg.result_json()) == cfg.replace(samples=10, filter="none")
    for bad, match in [(dict(per_layer=0), "per_layer must be a positive integer or None"),
                       (dict(min_edges=True), "min_edges must be an integer >= 1"),
                       (dict(box="cube"), "box must be one of"),
                       (dict(filter="x"), "filter must be one of"),
                       (dict(n_bootstrap=0), "n_bootstrap must be a positive integer"),
                       (dict(ci=1.0), r"ci must be in \(0, 1\)"),
                       (dict(nfd_threshold=-1), "nfd_threshold must be a positive finite number"),
                       (dict(per_layer=None, box="path"), "path boxes need a sampled network"),
                       (dict(samples=0), "samples must be >= 1"),
                       (dict(q=[1, 0]), "q must be strictly increasing")]:
        with pytest.raises(ValueError, match=match):
            AnalysisConfig(**bad)
    with pytest.raises(ValueError, match="unknown analysis options"):
        AnalysisConfig.from_json(dict(threshold=100.0, tresh=1))


def test_stored_config_of_the_previous_code_is_read_and_hashed_the_same():
    """run.json of a run directory written before AnalysisConfig existed: same keys, same hash."""
    from neuromfa_native.run.store import config_hash
    old = dict(per_layer=32, layout="reference", box="edge", direction="forward", threshold=150.0, min_edges=11,
               decimals=0, q=[float(x) for x in np.arange(-30, 31) / 10.0], node_dimension=True,
               nfd_threshold=200.0)
    cfg = AnalysisConfig.from_json(old)
    assert cfg.result_json() == old and config_hash(cfg.result_json()) == config_hash(old)


def test_public_functions_take_keywords_or_a_config():
    src = np.repeat(np.arange(4), 12)
    dst = np.arange(48) + 10
    w = np.linspace(0.01, 0.5, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = nm.analyze_graph(src, dst, w, threshold=90.0, min_edges=5)
        b = nm.analyze_graph(src, dst, w, config=AnalysisConfig(threshold=90.0, min_edges=5))
        c = nm.analyze_graph(src, dst, w, min_edges=5, config=AnalysisConfig(threshold=90.0, min_edges=3))
    assert a == b == c
    with pytest.raises(TypeError, match="config must be an AnalysisConfig"):
        nm.analyze_graph(src, dst, w, config=dict(threshold=90.0))
    assert repr(DEFAULT) == "<AnalysisConfig default>"


# ---------------------------------------------------------------------------------------------
# one runner: modules, imports, function length


def _module_files() -> dict:
    """``{dotted module name: path}`` of every module of the package (subpackages included)."""
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["neuromfa_native", *parts])] = path
    return out


# The layers and the absence of import circles are checked over every import in tests/test_layers.py.


@pytest.mark.slow  # a fresh interpreter per module
@pytest.mark.parametrize("module", sorted(m for m in _module_files() if not m.endswith("__main__")))
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    # the training callbacks import their framework (optional; the Trainer needs torch)
    for prefix, needs in (("neuromfa_native.integrations.transformers", ("torch", "transformers")),
                          ("neuromfa_native.integrations.lightning", ("torch", "lightning"))):
        missing = [n for n in needs if module == prefix and importlib.util.find_spec(n) is None]
        if missing:
            pytest.skip(f"{module} needs {', '.join(missing)} (optional), not installed")
    p = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in PKG.rglob("*.py"):
        if path.name == "_core.pyi":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body  # the docstring is not code
                n = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                if n > 80:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert not long, long


#: Private modules meant to be shared: the package's foundations, each subpackage's notebook view
#: and the CLI's common parts.
SHARED_PRIVATE = ("_core", "_validation", "_results", "_fs", "_html", "_text", "_version", "_display", "_common", "__version__")


def test_private_helpers_are_not_imported_across_modules():
    bad = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                module = (node.module or "").rpartition(".")[2]
                names = [module] + [a.name for a in node.names]
                bad += [f"{path.relative_to(PKG)}: {n}" for n in names if n.startswith("_") and n not in SHARED_PRIVATE]
    assert not bad, bad


# ---------------------------------------------------------------------------------------------
# one kind of result


def _spectrum():
    src = np.repeat(np.arange(4), 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nm.analyze_graph(src, np.arange(48) + 10, np.linspace(0.01, 0.5, 48), min_edges=5)


def test_a_spectrum_compares_by_value_and_its_mappings_are_read_only():
    s = _spectrum()
    assert s == dataclasses.replace(s) and not (s != dataclasses.replace(s))
    assert s != dataclasses.replace(s, alpha0=s.alpha0 + 1)
    with pytest.raises(TypeError):
        s.params["threshold"] = 1.0  # type: ignore[index]
    assert json.loads(json.dumps(s.to_dict()))["params"]["min_edges"] == 5


def _dataclass_defs() -> list:
    """``(module, class name, decorator)`` of every class decorated ``@dataclass`` in the package."""
    out = []
    for module, path in sorted(_module_files().items()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for d in node.decorator_list:
                    f = d.func if isinstance(d, ast.Call) else d
                    if getattr(f, "id", getattr(f, "attr", "")) == "dataclass":
                        out.append((module, node.name, d))
    return out


@pytest.mark.slow
def test_every_dataclass_in_the_package_is_frozen():
    thawed = [f"{m}.{n}" for m, n, d in _dataclass_defs()
              if not (isinstance(d, ast.Call) and any(k.arg == "frozen" and getattr(k.value, "value", False) is True
                                                       for k in d.keywords))]
    assert not thawed, thawed


def _walk(x, seen: dict) -> None:
    """Every dataclass instance reachable from ``x`` (fields, sequences, mapping values), by id."""
    if id(x) in seen:
        return
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        seen[id(x)] = x
        for f in dataclasses.fields(x):
            _walk(getattr(x, f.name), seen)
    elif isinstance(x, (tuple, list)):
        for y in x:
            _walk(y, seen)
    elif isinstance(x, Mapping):
        for y in x.values():
            _walk(y, seen)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """``(public, others)``: what the public functions return (a tiny series with every control,
    statistics and the breakdown by layer, its correlation, ...), and one instance of every
    other dataclass of the package (registry rows, configurations, layouts, internal records)."""
    from neuromfa_native.config import flags
    from neuromfa_native.integrations.monitor import MonitorResult
    from neuromfa_native.io.hub import HubFile, HubRevision
    from neuromfa_native.io.ranged import TensorEntry
    from neuromfa_native.mfa.boxes import BOX_TYPES
    from neuromfa_native.network.architectures.base import row_part
    from neuromfa_native.network.architectures.decoder import Block, Dims, Experts, Gated, Plain, Ref
    from neuromfa_native.network.architectures.registry import FAMILIES
    from neuromfa_native.network.nin import load_layout
    from neuromfa_native.report.html import SECTIONS
    from neuromfa_native.science.controls import SampledVariants
    from neuromfa_native.scores.quantities import QUANTITIES, as_run
    from tiny_series import PER_LAYER, make_series_dirs

    root = tmp_path_factory.mktemp("zoo")
    dirs = make_series_dirs(root / "c", steps=(0, 100, 1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        series = nm.analyze_series(dirs, samples=2, per_layer=PER_LAYER, n_threads=1, out=root / "run",
                                   controls=tuple(nm.CONTROLS), stats=True, by_layer=True)
        analysis = nm.analyze(dirs[1], samples=2, per_layer=PER_LAYER, n_threads=1, filter="f_positive")
        corr = nm.correlate(series, {0: {"piqa": 0.3}, 100: {"piqa": 0.5}, 1000: {"piqa": 0.7}}, n_boot=20)
    first = series.results[1]
    public = [series, analysis, corr, nm.verdict(series), nm.load_run(root / "run"), nm.make_series(dirs),
              nm.build_nin(dirs[0], sample=0, per_layer=PER_LAYER), nm.read_evals({0: {"piqa": 0.3}}), _spectrum(),
              nm.node_fractal_dimension(np.zeros(12, int), np.linspace(0.02, 0.5, 12)),
              nm.parse_revision("stage1-step1000-tokens5B"),
              MonitorResult(step=100, results=first, alpha0=1.2, width=0.4, E=0.01, E_lo=float("nan"),
                            E_hi=0.02, copy_seconds=0.0, seconds=0.1)]  # what Monitor.step returns (needs torch)
    p = "model.layers.0."
    gated = Gated(gate=Ref(name=p + "mlp.gate_proj.weight"), up=Ref(name=p + "mlp.up_proj.weight"),
                  down=Ref(name=p + "mlp.down_proj.weight"), size=128)
    qkv = p + "self_attn.qkv_proj.weight"
    specs = [Dims(h=32, nh=4, nkv=2, hd=8), Plain(up=Ref(name="fc_in"), down=Ref(name="fc_out"), size=128),
             Block(q=Ref(name=qkv, part=row_part(qkv, (64, 32), "q", 0, 32)), k=Ref(name=qkv), v=Ref(name=qkv),
                   o=Ref(name=p + "self_attn.o_proj.weight"), mlp=Experts(experts=(gated,) * 8, size=128)), gated]
    cfg = nm.AnalysisConfig(per_layer=PER_LAYER, controls="gaussian,shuffle", stats=True)
    others = [cfg, nm.CorrelationConfig(metric="acc,loss"), *BOX_TYPES.values(), *FAMILIES.values(),
              load_layout(dirs[0], "reference")[1], *SECTIONS, *QUANTITIES.values(), *nm.CONTROLS.values(),
              *flags().values(), TensorEntry(name="w", dtype="F16", shape=(2, 3), offset=8), as_run(series),
              SampledVariants.build(dirs[0], 0, cfg, None, 1), *specs,
              HubRevision(repo="org/m", revision="step1000", commit="0" * 40,
                          files=(HubFile(name="config.json", size=2, blob_id="1" * 40, sha256=None),))]
    return public, others


def _instances(objs) -> list:
    seen: dict = {}
    for x in objs:
        _walk(x, seen)
    return list(seen.values())


def test_the_zoo_holds_every_dataclass_of_the_package(zoo):
    """The rules below are checked on instances of every (public) dataclass the package defines: a
    new one must be added to the zoo."""
    have = {(type(x).__module__, type(x).__name__) for x in _instances(zoo[0] + zoo[1])}
    want = {(m, n) for m, n, _ in _dataclass_defs() if not n.startswith("_")}
    assert want - have == set(), sorted(want - have)


def test_every_dataclass_compares_without_raising_and_has_a_short_repr(zoo):
    """``==`` of any dataclass of the package holds for a deep copy (arrays compared by value, never
    'truth value of an array is ambiguous'); ``repr`` is one to a few lines in a terminal."""
    import copy
    for x in _instances(zoo[0] + zoo[1]):
        name = type(x).__name__
        assert x == copy.deepcopy(x) and not (x != copy.deepcopy(x)), name
        text = repr(x)
        assert len(text.splitlines()) <= 3 and len(text) <= 400, (name, len(text), text[:200])


def test_results_are_frozen_read_only_compare_by_value_and_are_built_with_keywords(zoo):
    """A result (a dataclass that a public function returns, or that one holds) compares with
    ``fields_equal`` (NaN equal to NaN, arrays by value), holds no writable array, list or dict,
    and is built with keywords wherever the package builds it."""
    from neuromfa_native._results import fields_equal
    results = _instances(zoo[0])
    classes = {type(x) for x in results}
    assert {nm.Series, nm.SampleResult, nm.Spectrum, nm.Correlation, nm.EvalTable, nm.Checkpoint} <= classes
    assert {type(x) for x in _instances(zoo[1])}.isdisjoint(classes - {nm.Spectrum, nm.NIN, nm.WeightStats})
    for x in results:
        assert type(x).__eq__ is fields_equal, type(x).__name__
        for f in dataclasses.fields(x):
            v = getattr(x, f.name)
            values = list(v.values()) if isinstance(v, Mapping) else [v]
            inner = [z for y in values if isinstance(y, tuple) for z in y]
            for y in values + inner:
                assert not (isinstance(y, np.ndarray) and y.flags.writeable), (type(x).__name__, f.name)
                assert not isinstance(y, (list, dict)), (type(x).__name__, f.name, type(y).__name__)
    names = {c.__name__ for c in classes}
    positional = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                f = node.func
                if getattr(f, "id", getattr(f, "attr", None)) in names:
                    positional.append(f"{path.name}:{node.lineno} {getattr(f, 'id', getattr(f, 'attr', ''))}")
    assert not positional, positional


def test_printing_an_analysis_is_short():
    src = str(Path(__file__).resolve().parents[1] / "examples" / "pythia-tiny" / "step2000")
    a = nm.analyze(src, samples=3, per_layer=8, n_threads=1)
    text = str(a)
    assert len(text.splitlines()) == 1 and text.startswith(f"<Analysis {src}: 3 samples, alpha0 ")
    assert f"alpha0 {a.alpha0_mean:.4f} ± {a.alpha0_std:.4f}, width {a.width_mean:.4f}" in text
    assert str(a.results[0]).startswith(f"<SampleResult {src} sample 0: alpha0 ")
    assert f"alpha0 {a.results[0].alpha0:.4f}" in str(a.results[0].spectrum)


def test_missing_values_are_nan_in_analysis_and_series():
    s = _spectrum()
    r = nm.SampleResult(checkpoint="c", sample=0, spectrum=s, n_network_nodes=1, n_network_edges=2, seconds=0.0)
    strict = "f_positive" if not s.passes("f_positive") else "alpha_range"
    a = nm.Analysis(checkpoint="c", results=(r,), filter="none")
    assert a.alpha0_mean == s.alpha0 and a.alpha0_std == 0.0
    none_kept = nm.Analysis(checkpoint="c", results=(), filter="none")
    assert np.isnan(none_kept.alpha0_mean) and np.isnan(none_kept.width_std)
    from neuromfa_native.run.series import summarize
    cps = nm.make_series(["a/step0", "b/step1"])
    series = summarize(cps, [[r], []], config=AnalysisConfig(), samples=(0,))
    assert np.isnan(series.alpha0_mean[1]) and np.isnan(series.emergence[1])
    assert series == summarize(cps, [[r], []], config=AnalysisConfig(), samples=(0,))
    del strict


# ---------------------------------------------------------------------------------------------
# entry points and warnings


def test_python_dash_m_is_the_neuromfa_command():
    p = subprocess.run([sys.executable, "-m", "neuromfa_native", "--version"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == f"neuromfa {nm.__version__}"
    p = subprocess.run([sys.executable, "-m", "neuromfa_native", "frobnicate"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("neuromfa: error: ")


def test_cli_shows_own_warnings_not_third_party_deprecations(capsys):
    from neuromfa_native.mfa.boxes import BoxType
    third = str(Path(np.__file__).parent / "core" / "fake.py")
    cli._showwarning(DeprecationWarning("old pyparsing API"), DeprecationWarning, third, 1)
    cli._showwarning(FutureWarning("torch.load default"), FutureWarning, third, 1)
    assert capsys.readouterr().err == ""
    cli._showwarning(RuntimeWarning("poor fit"), RuntimeWarning, str(PKG / "engine.py"), 1)
    cli._showwarning(DeprecationWarning("our own"), DeprecationWarning, str(PKG / "cli.py"), 1)
    cli._showwarning(UserWarning("from elsewhere"), UserWarning, third, 1)
    err = capsys.readouterr().err.splitlines()
    assert err == ["neuromfa: warning: poor fit", "neuromfa: warning: our own", "neuromfa: warning: from elsewhere"]
    assert BoxType.__module__.startswith("neuromfa_native")


def test_cli_hides_a_third_party_deprecation_raised_during_a_command(tmp_path, capsys, monkeypatch):
    def noisy_describe(*a, **kw):
        warnings.warn_explicit("pyparsing's oneOf is deprecated", DeprecationWarning,
                               str(Path(np.__file__).parent / "fake_third_party.py"), 7)
        warnings.warn("a note of the library", RuntimeWarning, stacklevel=1)
        raise ValueError("stop here")

    import neuromfa_native.network.nin as nin
    monkeypatch.setattr(nin, "describe", noisy_describe)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["info", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "pyparsing" not in err and "neuromfa: warning: a note of the library" in err


# ---------------------------------------------------------------------------------------------
# a non-finite weight outside the sampled rows


def _nan_model(tmp_path: Path, nan_row: int) -> Path:
    """A tiny custom-layout model, ``w1`` with one NaN at row ``nan_row``."""
    rng = np.random.default_rng(0)
    d = tmp_path / "step1"
    d.mkdir(parents=True)
    w1 = (rng.standard_normal((64, 16)) * 0.05).astype(np.float32)
    w2 = (rng.standard_normal((16, 64)) * 0.05).astype(np.float32)
    w1[nan_row, 3] = np.nan
    write_safetensors(d / "model.safetensors", {"w1": w1, "w2": w2})
    return d


LAYOUT = [("w1", "in", "hidden"), ("w2", "hidden", "out")]


def test_fingerprint_pass_finds_a_nan_outside_the_sampled_rows(tmp_path):
    from neuromfa_native.network.fingerprint import fingerprint, fingerprint_and_scan
    from neuromfa_native.network.nin import build_nin
    probe = _nan_model(tmp_path / "probe", 0)
    sampled_rows = set(build_nin(probe, per_layer=4, layout=LAYOUT, sample=0).node_ids.tolist())
    hidden_offset = 16  # node layers: in (16), hidden (64), out (16)
    row = next(r for r in range(64) if r + hidden_offset not in sampled_rows)
    d = _nan_model(tmp_path, row)
    digest, bad = fingerprint_and_scan(d, layout=LAYOUT)
    assert digest == fingerprint(d, layout=LAYOUT) and bad == {"w1": 1}
    build_nin(d, per_layer=4, layout=LAYOUT, sample=0)  # the NaN is not sampled: no error there
    with pytest.warns(RuntimeWarning, match=r"step1: non-finite weights \(NaN or inf\) in w1 \(1\)"):
        series = nm.analyze_series([d], samples=1, per_layer=4, layout=LAYOUT, min_edges=2, n_threads=1,
                                   out=tmp_path / "run", node_dimension=False)
    assert "w1 (1)" in series.notes[0] and "w1 (1)" in series.checkpoint_rows()[0]["notes"]
    from neuromfa_native.run.store import load_run
    from neuromfa_native.report.tables import write_tables
    again = load_run(tmp_path / "run")
    assert again.notes == series.notes
    write_tables(again, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert any("w1 (1)" in n for n in summary["notes"])
    assert "w1 (1)" in (tmp_path / "run" / "checkpoints.csv").read_text()


def test_nonfinite_counter_handles_every_float_dtype_and_split_chunks():
    from neuromfa_native.network.fingerprint import _NonFiniteCounter
    for dt, name in ((np.float16, "float16"), (np.float32, "float32"), (np.float64, "float64")):
        a = np.array([1, np.nan, -np.inf, 2, np.inf, 0], dtype=dt)
        c = _NonFiniteCounter(name)
        raw = a.tobytes()
        for k in range(0, len(raw), 3):  # chunks that end inside values
            c.add(memoryview(raw)[k:k + 3])
        assert c.total == 3, name
    bf = np.array([0x3F80, 0x7FC0, 0xFF80, 0x0000], dtype=np.uint16)  # 1, NaN, -inf, 0
    c = _NonFiniteCounter("bfloat16")
    c.add(bf.tobytes())
    assert c.total == 2


# ---------------------------------------------------------------------------------------------
# a run directory written before AnalysisConfig still loads and resumes

OLD_RUN = Path(__file__).resolve().parent / "data" / "run_before_analysis_config"


def test_a_run_directory_of_the_previous_code_loads_and_resumes(tmp_path):
    import shutil

    from neuromfa_native.run.store import load_run
    from tiny_series import PER_LAYER, make_series_dirs
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    old = load_run(run)
    assert old.complete and old.labels == ("step0", "step1000") and old.config["per_layer"] == PER_LAYER
    dirs = make_series_dirs(tmp_path / "ckpts", steps=(0, 1000))
    # its results are keyed by the weights alone (before result keys covered the network that
    # config.json builds): the same config hash, but a rerun computes them once more ...
    resumed = nm.analyze_series(dirs, samples=2, per_layer=PER_LAYER, n_threads=1, out=run)
    assert resumed.n_computed == 4 and resumed.n_reused == 0
    again = nm.analyze_series(dirs, samples=2, per_layer=PER_LAYER, n_threads=1, out=run)
    assert again.n_computed == 0 and again.n_reused == 4  # ... and then reuses them
    fresh = nm.analyze_series(dirs, samples=2, per_layer=PER_LAYER, n_threads=1)

    def numbers(s):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in s.sample_rows()]

    assert numbers(resumed) == numbers(again) == numbers(fresh) == numbers(old)
    assert np.array_equal(resumed.emergence, fresh.emergence)


def test_analyze_and_analyze_series_take_a_config(tmp_path):
    from tiny_series import PER_LAYER, make_series_dirs
    dirs = make_series_dirs(tmp_path, steps=(0, 100))
    cfg = AnalysisConfig(per_layer=PER_LAYER, samples=2, threshold=120.0, node_dimension=False)
    by_kw = nm.analyze(dirs[1], samples=2, per_layer=PER_LAYER, threshold=120.0, node_dimension=False, n_threads=1)
    by_cfg = nm.analyze(dirs[1], config=cfg, n_threads=1)
    assert [r.spectrum for r in by_kw.results] == [r.spectrum for r in by_cfg.results]
    assert by_cfg.params["threshold"] == 120.0 and by_cfg.results[0].node_dimensions is None
    one = nm.analyze_sample(dirs[1], 1, config=cfg, n_threads=1)
    assert one.spectrum == by_cfg.results[1].spectrum
    s = nm.analyze_series(dirs, config=cfg, samples=1, n_threads=1)  # a keyword overrides the config
    assert s.samples == (0,) and s.config["threshold"] == 120.0
    assert s.results[1][0].spectrum == by_cfg.results[0].spectrum


# ---------------------------------------------------------------------------------------------
# what ships and what installs


def test_the_package_ships_py_typed():
    assert (PKG / "py.typed").is_file()


def test_the_all_extra_holds_every_extra_a_user_runs():
    """``pip install ".[all]"`` gives everything a user runs but the training frameworks (torch)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomllib (3.11+) or tomli")
    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name in ("hub", "tables", "dask", "remote"):
        assert set(extras[name]) <= set(extras["all"]), name
