"""OpenMP beside torch, in fresh interpreters.

The core's OpenMP runtime (libgomp) and torch's (its own bundled copy) share a process in
either import order; worker processes started with spawn or forkserver run the engine; the
engine imports and works with torch absent, and never imports torch on its own.  Every child
prints its spectra as the hex of the float64 bytes, compared bit for bit with this process.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native.network.nin import build_nin
from neuromfa_native.io.safetensors import write_safetensors

CHILD_TIMEOUT = 120


def _graph_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    n = 60_000
    p = tmp_path / "graph.npz"
    np.savez(p, src=rng.integers(0, 800, n), dst=rng.integers(0, 3000, n), weight=rng.normal(0, 0.05, n))
    return p


def _fingerprint(spec) -> str:
    return spec.tau.tobytes().hex() + ":" + spec.log_z.tobytes().hex()


def _expected(graph: Path) -> str:
    g = np.load(graph)
    return _fingerprint(nm.analyze_graph(g["src"], g["dst"], g["weight"], n_threads=1))


# Imported by the children: loads the graph, runs a parallel analysis, prints one JSON line.
HELPER = '''
import json, sys
import numpy as np

def fingerprint(spec):
    return spec.tau.tobytes().hex() + ":" + spec.log_z.tobytes().hex()

def analyze(path, n_threads=2):
    import neuromfa_native as nm
    g = np.load(path)
    return fingerprint(nm.analyze_graph(g["src"], g["dst"], g["weight"], n_threads=n_threads))
'''


def _run(tmp_path: Path, code: str, timeout: float = CHILD_TIMEOUT) -> dict:
    """Runs ``code`` in a fresh interpreter (its own session, so a hung pool can be killed whole)
    and returns the JSON it printed last."""
    (tmp_path / "nmfa_child_helper.py").write_text(HELPER)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the child process hung (killed after {timeout} s)")
    assert proc.returncode == 0, f"child failed with return code {proc.returncode}:\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("order", ["torch first", "neuromfa_native first"])
def test_openmp_beside_torch_in_one_process(tmp_path, order):
    pytest.importorskip("torch", reason="torch is optional; this test reads or writes torch objects")
    graph = _graph_file(tmp_path)
    imports = "import torch\nimport neuromfa_native" if order == "torch first" else "import neuromfa_native\nimport torch"
    res = _run(tmp_path, f"""
        {imports.splitlines()[0]}
        {imports.splitlines()[1]}
        import json
        from nmfa_child_helper import analyze
        torch.set_num_threads(2)
        a = analyze({str(graph)!r}, n_threads=2)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(256, 256, generator=g, dtype=torch.float64)
        mm = float((x @ x.T).trace())            # a parallel torch op after ours
        b = analyze({str(graph)!r}, n_threads=2)  # and ours again after torch's
        print(json.dumps({{"a": a, "b": b, "mm": mm, "openmp": neuromfa_native.openmp_enabled()}}))
    """)
    want = _expected(graph)
    assert res["a"] == want and res["b"] == want
    import torch

    t = torch.randn(256, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert res["mm"] == pytest.approx(float(np.trace(t.numpy() @ t.numpy().T)), rel=1e-12)
    assert res["openmp"] == nm.openmp_enabled()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
@pytest.mark.slow
def test_process_pool_workers(tmp_path, method):
    """Workers started with spawn / forkserver, after the parent itself ran a parallel analysis
    (its OpenMP thread pool exists when the workers start); 1, 2 and 8 threads in the workers."""
    graph = _graph_file(tmp_path)
    res = _run(tmp_path, f"""
        import json, multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        from nmfa_child_helper import analyze

        if __name__ == "__main__":
            parent = analyze({str(graph)!r}, n_threads=2)
            ctx = mp.get_context({method!r})
            with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
                workers = list(pool.map(analyze, [{str(graph)!r}] * 4, [1, 2, 2, 8]))
            print(json.dumps({{"parent": parent, "workers": workers}}))
    """)
    want = _expected(graph)
    assert res["parent"] == want
    assert res["workers"] == [want] * 4


# Regression test (found by the hardening pass, fixed since):
# Was a bug (engine / C++ core with GNU libgomp): after the parent ran a parallel region, a child
# made by fork (Python < 3.14's default start method on Linux) hangs forever in its first
# parallel region with n_threads >= 2 (libgomp is not fork-safe); n_threads=1 works.
# Suggested fix in engine.py: os.register_at_fork(after_in_child=...) to run forked
# children serially (with a one-time warning), and document spawn/forkserver
def test_fork_pool_after_parallel_use_does_not_hang(tmp_path):
    rng = np.random.default_rng(1)
    n = 5000
    p = tmp_path / "small.npz"
    np.savez(p, src=rng.integers(0, 100, n), dst=rng.integers(0, 300, n), weight=rng.normal(0, 0.05, n))
    res = _run(tmp_path, f"""
        import json, multiprocessing as mp
        from nmfa_child_helper import analyze

        if __name__ == "__main__":
            parent = analyze({str(p)!r}, n_threads=2)
            with mp.get_context("fork").Pool(2) as pool:
                workers = pool.map(analyze, [{str(p)!r}] * 2)
            print(json.dumps({{"parent": parent, "workers": workers}}))
    """, timeout=30)  # a hang never ends; 30 s leaves room for a loaded machine
    assert res["workers"] == [res["parent"]] * 2


def _safetensors_model(tmp_path: Path) -> Path:
    """A tiny GPT-NeoX checkpoint written with numpy only."""
    h = 8
    rng = np.random.default_rng(3)
    t = {}
    for b in range(2):
        pre = f"gpt_neox.layers.{b}."
        t[pre + "attention.query_key_value.weight"] = rng.normal(0, 0.1, (3 * h, h)).astype(np.float16)
        t[pre + "attention.dense.weight"] = rng.normal(0, 0.1, (h, h)).astype(np.float16)
        t[pre + "mlp.dense_h_to_4h.weight"] = rng.normal(0, 0.1, (4 * h, h)).astype(np.float16)
        t[pre + "mlp.dense_4h_to_h.weight"] = rng.normal(0, 0.1, (h, 4 * h)).astype(np.float16)
    folder = tmp_path / "model"
    folder.mkdir()
    write_safetensors(folder / "model.safetensors", t)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt_neox", "hidden_size": h, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 4 * h}))
    return folder


NO_TORCH_CHILD = """
    import json, sys
    {block}
    import neuromfa_native as nm
    from neuromfa_native.network.nin import build_nin, describe
    from nmfa_child_helper import analyze, fingerprint
    a = analyze({graph!r}, n_threads=2)
    nin = build_nin({model!r}, per_layer=4, sample=1)
    full = build_nin({model!r}, per_layer=None)
    d = describe({model!r}, per_layer=4)
    s = nm.analyze_graph(full.src, full.dst, full.weight, min_edges=2, n_threads=2)
    heavy = [m for m in ("torch", "transformers", "huggingface_hub") if sys.modules.get(m) is not None]
    print(json.dumps({{"a": a, "nin": nin.src.tobytes().hex() + nin.weight.tobytes().hex(),
                      "full": fingerprint(s), "edges": d["sampled"]["edges"], "heavy": heavy,
                      "torch_key": "torch" in sys.modules}}))
"""


@pytest.mark.parametrize("torch_state", ["blocked", "installed but unused"])
@pytest.mark.slow
def test_engine_without_torch(tmp_path, torch_state):
    """``sys.modules['torch'] = None`` makes any ``import torch`` fail: the engine and the
    safetensors path must not need it.  With torch installed, they must not import it either."""
    graph = _graph_file(tmp_path)
    model = _safetensors_model(tmp_path)
    block = "sys.modules['torch'] = None" if torch_state == "blocked" else ""
    res = _run(tmp_path, NO_TORCH_CHILD.format(block=block, graph=str(graph), model=str(model)))
    assert res["heavy"] == []
    assert res["torch_key"] == (torch_state == "blocked")  # blocked: the None entry is still there
    assert res["a"] == _expected(graph)
    nin = build_nin(model, per_layer=4, sample=1)
    assert res["nin"] == nin.src.tobytes().hex() + nin.weight.tobytes().hex()
    full = build_nin(model, per_layer=None)
    assert res["full"] == _fingerprint(nm.analyze_graph(full.src, full.dst, full.weight, min_edges=2, n_threads=1))
