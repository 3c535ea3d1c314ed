"""Controls, statistics and the breakdown by layer with an executor: the same numbers as in
process (the ``scaled`` control's baseline runs as a first wave), and the options' place in the
stored configuration (a plain run keeps its hash)."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing

import numpy as np
import pytest

from neuromfa_native import AnalysisConfig, analyze_series
from neuromfa_native.config import RESULT_FIELDS
from neuromfa_native.run.store import config_hash, load_run

from tiny_series import PER_LAYER, make_series_dirs

K = 2
OPTS = dict(samples=K, per_layer=PER_LAYER, n_threads=1, n_bootstrap=50, node_dimension=False,
            controls=("gaussian", "shuffle", "scaled"), stats=True, by_layer=True)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return [str(d) for d in make_series_dirs(tmp_path_factory.mktemp("ctl_ex"), steps=(0, 40, 900))]


@pytest.fixture(scope="module")
def in_process(dirs):
    return analyze_series(dirs, baseline=1, **OPTS)


def _same(a, b):
    for name, v in a.quantities().items():
        np.testing.assert_array_equal(b.quantities()[name], v, err_msg=name)
    assert a.control_rows() == b.control_rows()
    assert a.stats_rows() == b.stats_rows()
    for ra, rb in zip(a.results, b.results):
        for x, y in zip(ra, rb):
            assert len(x.by_layer) == len(y.by_layer) > 0
            for gx, gy in zip(x.by_layer, y.by_layer):
                assert dict(gx).keys() == dict(gy).keys()
                np.testing.assert_array_equal([gx["alpha0"], gx["width"]], [gy["alpha0"], gy["width"]])
                assert (gx["group"], gx["n_centres"], gx["note"]) == (gy["group"], gy["n_centres"], gy["note"])


def test_thread_pool_gives_the_in_process_numbers_with_scaled(dirs, in_process, tmp_path):
    # baseline=1 (not the first checkpoint): the baseline's tasks must still complete first
    with cf.ThreadPoolExecutor(max_workers=3) as ex:
        s = analyze_series(dirs, baseline=1, executor=ex, out=tmp_path / "run", **OPTS)
    _same(in_process, s)
    assert np.all(np.abs(s.quantities()["E_scaled"][1]) == 0)  # the baseline itself
    _same(in_process, load_run(tmp_path / "run"))


@pytest.mark.slow
def test_spawn_process_pool_gives_the_in_process_numbers(dirs, in_process):
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as ex:
        s = analyze_series(dirs, baseline=1, executor=ex, **OPTS)
    _same(in_process, s)


def test_plain_config_keeps_its_hash_and_options_enter_only_when_asked():
    plain = AnalysisConfig()
    assert list(plain.result_json()) == list(RESULT_FIELDS)
    assert config_hash(AnalysisConfig(controls=(), stats=False, by_layer=False).result_json()) == \
        config_hash(plain.result_json())
    cfg = AnalysisConfig(controls="shuffle,gaussian", stats=True)
    assert cfg.controls == ("gaussian", "shuffle")
    assert cfg.result_json()["controls"] == ["gaussian", "shuffle"] and cfg.result_json()["stats"] is True
    assert "by_layer" not in cfg.result_json()
    assert config_hash(cfg.result_json()) != config_hash(plain.result_json())
    assert AnalysisConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown controls"):
        AnalysisConfig(controls=("gauss",))
