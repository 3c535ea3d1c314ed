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
from pathlib import Path

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native import AnalysisConfig, cli
from neuromfa_native.config import AGGREGATION_FIELDS, DEFAULT, RESULT_FIELDS, defaults
from neuromfa_native.io.safetensors import write_safetensors

PKG = Path(nm.__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# one configuration


def test_cli_defaults_are_the_config_defaults():
    args = cli.build_parser().parse_args(["analyze", "x"])
    cfg = AnalysisConfig()
    flags = dict(samples="samples", per_layer="per_layer", layout="layout", box="box", direction="direction",
                 threshold="threshold", min_edges="min_edges", decimals="decimals", filter="filter",
                 node_dimension="node_dimension", nfd_threshold="nfd_threshold", bootstrap="n_bootstrap",
                 ci="ci", seed="seed")
    for flag, option in flags.items():
        assert getattr(args, flag) == defaults()[option], flag
    built = AnalysisConfig(**{option: getattr(args, flag) for flag, option in flags.items()})
    assert built == cfg
    info = cli.build_parser().parse_args(["info", "x"])
    assert info.per_layer == cfg.per_layer and info.layout == cfg.layout
    # every option but q (a list, not a flag) is a flag of `neuromfa analyze`
    assert set(flags.values()) == set(RESULT_FIELDS + AGGREGATION_FIELDS) - {"q"}


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
SHARED_PRIVATE = ("_core", "_validation", "_results", "_fs", "_html", "_version", "_display", "_common", "__version__")


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


def test_results_compare_without_raising_and_cannot_be_mutated():
    s = _spectrum()
    t = dataclasses.replace(s)
    assert s == t and not (s != t)
    assert s != dataclasses.replace(s, alpha0=s.alpha0 + 1)
    with pytest.raises(TypeError):
        s.params["threshold"] = 1.0  # type: ignore[index]
    assert not s.tau.flags.writeable and not s.log_z.flags.writeable
    assert json.loads(json.dumps(s.to_dict()))["params"]["min_edges"] == 5
    nd = nm.node_fractal_dimension(np.zeros(12, int), np.linspace(0.02, 0.5, 12))
    assert isinstance(nd, nm.NodeDimensions) and nd == dataclasses.replace(nd)
    assert not nd.dimension.flags.writeable
    r = nm.SampleResult(checkpoint="c", sample=0, spectrum=s, n_network_nodes=1, n_network_edges=2, seconds=0.0,
                        node_dimensions=nd)
    a = nm.Analysis(checkpoint="c", results=(r,), params=dict(samples=[0]))
    assert a == dataclasses.replace(a) and r == dataclasses.replace(r)
    with pytest.raises(TypeError):
        a.params["x"] = 1  # type: ignore[index]


def test_results_are_built_with_keywords_in_the_package():
    """Every call of a result class in the package passes its fields by keyword."""
    classes = {"Spectrum", "SampleResult", "Analysis", "NodeDimensions", "Series", "Checkpoint", "NIN"}
    positional = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes \
                    and node.args:
                positional.append(f"{path.name}:{node.lineno} {node.func.id}")
    assert not positional, positional


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
