"""Beyond one machine: executors (spawn process pools, a real Dask LocalCluster) give the same
results as the in-process run; fork pools are refused."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp

import numpy as np
import pytest

from neuromfa_native import cli
from neuromfa_native import analyze_series
from neuromfa_native.run.store import load_run
from tiny_series import PER_LAYER, make_series_dirs

OPTS = dict(samples=2, per_layer=PER_LAYER, n_threads=1, n_bootstrap=200)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return [str(d) for d in make_series_dirs(tmp_path_factory.mktemp("dk"), steps=(0, 20, 500))]


@pytest.fixture(scope="module")
def in_process(dirs):
    return analyze_series(dirs, **OPTS)


def _numbers(series):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in series.sample_rows()]


def _same(a, b):
    assert _numbers(a) == _numbers(b)
    np.testing.assert_array_equal(a.emergence, b.emergence)
    np.testing.assert_array_equal(a.emergence_ci, b.emergence_ci)
    assert a.fingerprints == b.fingerprints
    assert a.node_dimension_rows() == b.node_dimension_rows()


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="dask.distributed is optional; this test runs on a dask cluster")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as c, distributed.Client(c) as client:
        yield c, client


@pytest.mark.slow
def test_dask_local_cluster_equals_in_process(cluster, dirs, in_process, tmp_path):
    _, client = cluster
    s = analyze_series(dirs, executor=client.get_executor(), out=tmp_path / "run", **OPTS)
    _same(s, in_process)
    _same(load_run(tmp_path / "run"), in_process)  # written as futures completed
    assert s.n_computed == 3 * 2


@pytest.mark.slow  # starts a dask LocalCluster
def test_dask_without_threads_warns(cluster, dirs):
    _, client = cluster
    with pytest.warns(RuntimeWarning, match="pass n_threads explicitly"):
        analyze_series(dirs[:1], executor=client.get_executor(), **{**OPTS, "n_threads": None})


@pytest.mark.slow  # starts a dask LocalCluster
def test_cli_scheduler(cluster, dirs, in_process, tmp_path, capsys):
    c, _ = cluster
    out = tmp_path / "run"
    rc = cli.main(["analyze", *dirs, "--scheduler", c.scheduler_address, "--out", str(out), "--samples", "2",
                   "--per-layer", str(PER_LAYER), "--no-plots", "--bootstrap", "200"])
    assert rc == 0, capsys.readouterr().err
    _same(load_run(out), in_process)


@pytest.mark.slow
def test_spawn_process_pool_equals_in_process(dirs, in_process):
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        s = analyze_series(dirs, executor=ex, **OPTS)
    _same(s, in_process)


def test_fork_process_pool_is_refused(dirs):
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as ex:
        with pytest.raises(ValueError, match="'fork' start method.*spawn"):
            analyze_series(dirs, executor=ex, **OPTS)


def test_thread_pool_and_task_errors(dirs, tmp_path):
    with cf.ThreadPoolExecutor(2) as ex:
        with pytest.raises(ValueError, match=r"step\d+, sample \d: .*999"):  # whichever fails first
            analyze_series(dirs, executor=ex, **{**OPTS, "per_layer": 999})


@pytest.mark.slow
def test_cli_jobs(dirs, in_process, tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(["analyze", *dirs, "--jobs", "2", "--out", str(out), "--samples", "2", "--per-layer",
                   str(PER_LAYER), "--no-plots", "--bootstrap", "200", "-q"])
    assert rc == 0, capsys.readouterr().err
    _same(load_run(out), in_process)
