"""The training monitor: Monitor in a plain loop, the Hugging Face Trainer callback,
the Lightning callback, the pile-up policy, failures, wrappers, and exactness against the
offline analysis of checkpoints saved at the same steps."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import numpy as np
import pytest

import neuromfa_native as nm
from model_factory import make_model
from neuromfa_native.integrations import monitor as monitor_mod
from neuromfa_native.cli import main as cli_main
from neuromfa_native.integrations.monitor import Monitor
from paths import TESTS

torch = pytest.importorskip("torch", reason="torch is optional; the monitor watches torch models")
transformers = pytest.importorskip("transformers", reason="transformers is optional; the Trainer callback needs it")

S, K = 8, 3  # tiny networks: hidden 32, 2 blocks
OPTS = dict(samples=K, per_layer=S, n_threads=1)


def _same(mon_result, folder, **kw):
    """Per-sample alpha0/width and spectra of the monitor equal `analyze` of the saved folder, bit for bit."""
    a = nm.analyze(str(folder), **OPTS, **kw)
    assert [r.sample for r in a.results] == [r.sample for r in mon_result.results]
    for x, y in zip(a.results, mon_result.results):
        assert x.alpha0 == y.alpha0 and x.width == y.width
        np.testing.assert_array_equal(x.spectrum.tau, y.spectrum.tau)
        assert x.n_network_edges == y.n_network_edges


def _train_steps(model, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(n):
        x = torch.randint(0, 64, (4, 16), generator=g)
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad()


def test_import_does_not_import_frameworks():
    code = ("import sys, neuromfa_native as nm; "
            "bad = [m for m in ('torch', 'transformers', 'lightning', 'pytorch_lightning') if m in sys.modules]; "
            "assert not bad, bad; assert 'Monitor' in nm.__all__; nm.Monitor; "
            "assert 'torch' not in sys.modules, 'Monitor imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_plain_loop_matches_saved_checkpoints_and_reports(tmp_path, capsys):
    torch.manual_seed(0)
    model = make_model("gpt_neox").train()
    run = tmp_path / "run"
    with Monitor(model, out=run, **OPTS) as mon:
        for step in (0, 3, 6):
            mon.step(step)
            model.save_pretrained(tmp_path / f"step{step}")
            # wait for the background analysis: on a slow machine step 6 would otherwise replace a
            # waiting step 3 (the pile-up policy, tested on its own below), and this test is about exactness
            mon.wait()
            _train_steps(model, 3, seed=step)
    assert not mon.errors and not mon.dropped, (mon.errors, mon.dropped)
    assert [r.step for r in mon.results] == [0, 3, 6]
    for r in mon.results:
        _same(r, tmp_path / f"step{r.step}")
    assert mon.results[0].E == 0.0 and mon.results[-1].E != 0.0
    assert mon.results[-1].E_lo <= mon.results[-1].E <= mon.results[-1].E_hi
    # the run directory is a run like any other: load_run gives the same statistics and E interval
    s = nm.load_run(run)
    assert list(s.steps) == [0, 3, 6] and s.labels == ("step0", "step3", "step6")
    np.testing.assert_array_equal(s.emergence, [r.E for r in mon.results])
    np.testing.assert_array_equal(s.emergence_ci[:, 0], [r.E_lo for r in mon.results])
    np.testing.assert_array_equal(s.alpha0_mean, [r.alpha0 for r in mon.results])
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    # ... and the offline analysis of the saved checkpoints gives the same E
    off = nm.analyze_series([str(tmp_path / f"step{k}") for k in (0, 3, 6)], **OPTS)
    np.testing.assert_array_equal(off.emergence, s.emergence)
    np.testing.assert_array_equal(off.emergence_ci, s.emergence_ci)
    assert cli_main(["report", str(run), "--no-plots"]) == 0
    assert "step6" in capsys.readouterr().out
    with pytest.raises(ValueError, match="another configuration"):  # refused at once, not in the worker
        Monitor(model, out=run, samples=K, per_layer=4)


@pytest.mark.slow
def test_synchronous_mode_returns_the_result():
    model = make_model("gpt_neox")
    mon = Monitor(model, background=False, **OPTS)
    r = mon.step(5)
    assert r is not None and r.step == 5 and r.E == 0.0 and len(r.results) == K
    assert mon.step(5) is None  # a step asked for twice is analysed once
    mon.close()
    mon.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        mon.step(6)


def test_slow_analysis_keeps_only_the_latest_waiting_request(monkeypatch):
    """Pile-up policy: one analysis runs, one request waits; a newer request replaces the
    waiting one (dropped), the baseline is never dropped, close() finishes the rest."""
    started, release = threading.Event(), threading.Event()
    real = monitor_mod.analyze_sample

    def slow(*a, **kw):
        started.set()
        assert release.wait(30)
        return real(*a, **kw)

    monkeypatch.setattr(monitor_mod, "analyze_sample", slow)
    model = make_model("gpt_neox")
    mon = Monitor(model, **OPTS)
    mon.step(0)
    assert started.wait(30)  # the baseline is running
    for step in (1, 2, 3):
        mon.step(step)  # returns at once: only the snapshot is taken
    assert mon.dropped == [1, 2]
    release.set()
    mon.close()
    assert [r.step for r in mon.results] == [0, 3] and mon.dropped == [1, 2]


def test_baseline_is_never_replaced(monkeypatch):
    gate = threading.Event()
    real = monitor_mod.Monitor._analyse

    def held(self, job):
        assert gate.wait(30)
        return real(self, job)

    monkeypatch.setattr(monitor_mod.Monitor, "_analyse", held)
    mon = Monitor(make_model("gpt_neox"), **OPTS)
    mon.step(0)
    mon.step(1)
    mon.step(2)
    gate.set()
    mon.close()
    steps = [r.step for r in mon.results]
    assert steps[0] == 0 and steps[-1] == 2 and 0 not in mon.dropped


def test_nan_weight_is_logged_once_and_training_goes_on(caplog):
    model = make_model("gpt_neox")
    mon = Monitor(model, **OPTS)
    mon.step(0)
    mon.wait()
    with torch.no_grad():
        model.gpt_neox.layers[0].attention.query_key_value.weight.fill_(float("nan"))
    with caplog.at_level(logging.WARNING, logger="neuromfa_native.integrations.monitor"):
        mon.step(1)
        mon.step(2)
        mon.close()
    assert [r.step for r in mon.results] == [0]
    assert len(mon.errors) >= 1 and "non-finite" in mon.errors[0]
    assert len([r for r in caplog.records if "neuromfa monitor" in r.getMessage()]) == 1


def test_nan_weight_strict_raises():
    model = make_model("gpt_neox")
    with torch.no_grad():
        model.gpt_neox.layers[0].attention.query_key_value.weight[0, 0] = float("nan")
    mon = Monitor(model, strict=True, background=False, **OPTS)
    with pytest.raises(ValueError, match="non-finite"):
        mon.step(0)
    mon.close()
    mon = Monitor(model, strict=True, **OPTS)  # background: raised by wait()/close()
    mon.step(0)
    with pytest.raises(ValueError, match="non-finite"):
        mon.wait()
    mon.close()


def test_unknown_architecture_logged_once_or_strict(caplog):
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8))
    with caplog.at_level(logging.WARNING, logger="neuromfa_native.integrations.monitor"):
        mon = Monitor(net, **OPTS)
        for k in range(3):
            assert mon.step(k) is None
        mon.close()
    assert not mon.results and len(mon.errors) == 1 and "cannot analyse this model" in mon.errors[0]
    # logged once (records of other tests' monitor threads, still finishing, are not this one's)
    assert len([r for r in caplog.records if "cannot analyse this model" in r.getMessage()]) == 1
    with pytest.raises(ValueError, match="cannot analyse this model"):
        Monitor(net, strict=True, **OPTS).step(0)
    # a custom layout makes any model analysable
    lay = [("0.weight", "in", "mid"), ("1.weight", "mid", "out")]
    r = Monitor(net, background=False, samples=2, per_layer=4, layout=lay, min_edges=1).step(0)
    assert r is not None


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_model_matches_its_checkpoint(tmp_path, dtype):
    model = make_model("gpt_neox", dtype=dtype)
    model.save_pretrained(tmp_path / "ck")
    r = Monitor(model, background=False, **OPTS).step(0)
    _same(r, tmp_path / "ck")


# torch's own import of its jit helpers while compiling (third-party, not ours)
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.slow
def test_compiled_and_ddp_wrapped_models(tmp_path):
    model = make_model("gpt_neox")
    model.save_pretrained(tmp_path / "ck")
    r = Monitor(torch.compile(model), background=False, **OPTS).step(0)  # reads _orig_mod, compiles nothing
    _same(r, tmp_path / "ck")

    class DistributedDataParallel(torch.nn.Module):  # the wrapper's shape: .module (a real one needs a process group)
        def __init__(self, m):
            super().__init__()
            self.module = m

    r = Monitor(DistributedDataParallel(model), background=False, **OPTS).step(0)
    _same(r, tmp_path / "ck")


def test_other_ranks_do_nothing(monkeypatch):
    monkeypatch.setattr(monitor_mod, "_rank", lambda: 1)
    mon = Monitor(make_model("gpt_neox"), **OPTS)
    assert mon.step(0) is None
    mon.close()
    assert not mon.results and not mon.copy_seconds


def test_fsdp_is_refused():
    class FullyShardedDataParallel(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.module = m

    with pytest.raises(ValueError, match="FSDP"):
        Monitor(FullyShardedDataParallel(make_model("gpt_neox")), strict=True, **OPTS).step(0)


class _Lora(torch.nn.Module):
    """peft's LoRA layer shape (peft is not a dependency): base_layer, lora_A/lora_B, merged."""

    def __init__(self, base):
        super().__init__()
        self.base_layer = base
        self.lora_A = torch.nn.ModuleDict({"default": torch.nn.Linear(base.in_features, 2, bias=False)})
        self.lora_B = torch.nn.ModuleDict({"default": torch.nn.Linear(2, base.out_features, bias=False)})
        torch.nn.init.normal_(self.lora_B["default"].weight)
        self.merged = False

    def merge(self):
        with torch.no_grad():
            self.base_layer.weight += self.lora_B["default"].weight @ self.lora_A["default"].weight
        self.merged = True


def test_lora_merged_or_base_weights(tmp_path):
    model = make_model("gpt_neox")
    model.save_pretrained(tmp_path / "base")
    att = model.gpt_neox.layers[0].attention
    att.query_key_value = _Lora(att.query_key_value)
    with pytest.raises(ValueError, match="unmerged LoRA"):
        Monitor(model, strict=True, **OPTS).step(0)
    _same(Monitor(model, background=False, peft="base", **OPTS).step(0), tmp_path / "base")
    att.query_key_value.merge()
    with pytest.raises(ValueError, match="merged into their base weights"):
        Monitor(model, strict=True, peft="base", **OPTS).step(0)
    r = Monitor(model, background=False, **OPTS).step(0)
    merged = make_model("gpt_neox")
    merged.gpt_neox.layers[0].attention.query_key_value.weight.data.copy_(att.query_key_value.base_layer.weight)
    merged.save_pretrained(tmp_path / "merged")
    _same(r, tmp_path / "merged")


def test_bad_options():
    model = make_model("gpt_neox")
    with pytest.raises(ValueError, match="per_layer=None"):
        Monitor(model, per_layer=None)
    with pytest.raises(ValueError, match="peft"):
        Monitor(model, peft="adapter")
    with pytest.raises(ValueError, match="per_layer=None"):
        Monitor(model, config=nm.AnalysisConfig(per_layer=None))
    with pytest.raises(TypeError, match=r"unknown analysis options \['tresholds'\]"):
        Monitor(model, tresholds=1)
    with pytest.raises(ValueError, match="threshold"):
        Monitor(model, threshold=0.5)
    with pytest.raises(TypeError, match="config must be an AnalysisConfig"):
        Monitor(model, config=dict(per_layer=S))
    from neuromfa_native.integrations.transformers import NeuroMFACallback
    with pytest.raises(ValueError, match="ci must be in"):  # checked when the callback is made
        NeuroMFACallback(every=2, ci=2.0)
    with pytest.raises(TypeError, match="unknown analysis options"):
        NeuroMFACallback(every=2, tresholds=1)


def test_config_or_keywords_and_the_run_config_of_neuromfa_analyze(tmp_path):
    """``config=`` gives what the same keywords give, keywords override it, and the run directory's
    config (and its hash) is that of ``analyze_series`` with the same options."""
    model = make_model("gpt_neox")
    cfg = nm.AnalysisConfig(samples=K, per_layer=S, threshold=120.0, node_dimension=False, n_bootstrap=200)
    by_kw = Monitor(model, background=False, n_threads=1, samples=K, per_layer=S, threshold=120.0,
                    node_dimension=False, n_bootstrap=200)
    by_cfg = Monitor(model, background=False, n_threads=1, config=cfg, out=tmp_path / "run")
    assert by_kw.config == by_cfg.config == cfg
    a, b = by_kw.step(0), by_cfg.step(0)
    assert [r.spectrum for r in a.results] == [r.spectrum for r in b.results]
    by_kw.close()
    by_cfg.close()
    over = Monitor(model, background=False, n_threads=1, config=cfg, samples=1, threshold=150.0)
    assert over.config.samples == (0,) and over.config.threshold == 150.0 and over.config.per_layer == S
    over.close()
    model.save_pretrained(tmp_path / "step0")
    nm.analyze_series([str(tmp_path / "step0")], config=cfg, n_threads=1, out=tmp_path / "offline")
    ours, theirs = (json.loads((tmp_path / d / "run.json").read_text()) for d in ("run", "offline"))
    assert ours["config"] == theirs["config"] and ours["config_hash"] == theirs["config_hash"]
    assert {k: ours["aggregation"][k] for k in ("samples", "n_bootstrap", "ci", "seed", "filter")} == \
        {k: theirs["aggregation"][k] for k in ("samples", "n_bootstrap", "ci", "seed", "filter")}


def test_the_results_key_of_a_live_model_covers_the_network_its_config_builds(tmp_path):
    """The same weights under a config that builds another network (layout "heads" with another
    head count) are stored under another key: a run directory never mixes the two."""
    model = make_model("gpt_neox")
    heads = model.config.num_attention_heads
    folders = []
    for h in (heads, heads // 2):
        model.config.num_attention_heads = h
        with Monitor(model, background=False, n_threads=1, samples=1, per_layer=S, layout="heads",
                     node_dimension=False, out=tmp_path / f"run{h}") as m:
            m.step(0)
        folders.append({p.name for p in (tmp_path / f"run{h}" / "results").iterdir()})
    assert len(folders[0]) == len(folders[1]) == 1 and folders[0] != folders[1]


# ---------------------------------------------------------------------------------------------
# Hugging Face Trainer


class _Tokens(torch.utils.data.Dataset):
    def __init__(self, n=512, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 64, (n, 16), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.x[i]}


@pytest.mark.slow
def test_trainer_callback_matches_saved_checkpoints(tmp_path, capsys):
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    from neuromfa_native.integrations.transformers import NeuroMFACallback
    from transformers import Trainer, TrainingArguments

    every, steps = 8, 24
    torch.manual_seed(0)
    model = make_model("gpt_neox").train()
    cb = NeuroMFACallback(every=every, out=tmp_path / "nmfa", **OPTS)
    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), max_steps=steps, per_device_train_batch_size=4,
                             learning_rate=1e-2, save_steps=every, save_strategy="steps", logging_steps=every,
                             report_to=[], use_cpu=True, disable_tqdm=True, seed=0, save_only_model=True,
                             dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=_Tokens(), callbacks=[cb])
    trainer.train()
    mon = cb.monitor
    analysed = [r.step for r in mon.results]
    assert analysed[0] == 0 and analysed[-1] == steps and not mon.errors
    assert set(analysed) | set(mon.dropped) == set(range(0, steps + 1, every))
    for r in mon.results:
        if r.step:
            assert (tmp_path / "ckpt" / f"checkpoint-{r.step}" / "model.safetensors").exists()
            _same(r, tmp_path / "ckpt" / f"checkpoint-{r.step}")
    logged = [h for h in trainer.state.log_history if "neuromfa/E" in h]
    assert [h["neuromfa/step"] for h in logged] == [float(s) for s in analysed]
    for h, r in zip(logged, mon.results):
        for k in ("neuromfa/alpha0", "neuromfa/width", "neuromfa/E", "neuromfa/E_lo", "neuromfa/E_hi"):
            assert h[k] == r.metrics()[k]
    s = nm.load_run(tmp_path / "nmfa")
    assert list(s.steps) == analysed
    assert cli_main(["report", str(tmp_path / "nmfa"), "--no-plots"]) == 0
    assert f"step{steps}" in capsys.readouterr().out


@pytest.mark.slow
def test_trainer_callback_step0_equals_initial_weights(tmp_path):
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    from neuromfa_native.integrations.transformers import NeuroMFACallback
    from transformers import Trainer, TrainingArguments

    model = make_model("gpt_neox").train()
    model.save_pretrained(tmp_path / "init")
    cb = NeuroMFACallback(every=4, background=False, **OPTS)
    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), max_steps=4, per_device_train_batch_size=4,
                             save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=_Tokens(64), callbacks=[cb]).train()
    assert [r.step for r in cb.monitor.results] == [0, 4]
    _same(cb.monitor.results[0], tmp_path / "init")
    with pytest.raises(ValueError, match="every"):
        NeuroMFACallback(every=0)


# ---------------------------------------------------------------------------------------------
# Lightning


# lightning's own use of torch's pytree API and its hints about this tiny run (third-party, not ours)
@pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore:The number of training batches:UserWarning")
@pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning")
@pytest.mark.slow
def test_lightning_callback(tmp_path):
    L = pytest.importorskip("lightning", reason="lightning is not installed (pip install '.[test-monitor]')")
    from lightning.pytorch.loggers.logger import Logger
    from neuromfa_native.integrations.lightning import NeuroMFACallback

    class Recorder(Logger):
        def __init__(self):
            super().__init__()
            self.calls = []

        name, version = "rec", 0

        @property
        def experiment(self):
            return None

        def log_metrics(self, metrics, step=None):
            self.calls.append((step, dict(metrics)))

        def log_hyperparams(self, params, *a, **k):
            pass

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = make_model("gpt_neox").train()

        def training_step(self, batch, i):
            return self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-2)

    class Saver(L.Callback):  # before the monitor: the same weights, saved at the same steps
        def on_train_start(self, trainer, m):
            m.model.save_pretrained(tmp_path / "step0")

        def on_train_batch_end(self, trainer, m, *a):
            if trainer.global_step % 4 == 0:
                m.model.save_pretrained(tmp_path / f"step{trainer.global_step}")

    rec = Recorder()
    cb = NeuroMFACallback(every=4, out=tmp_path / "nmfa", background=False, **OPTS)
    trainer = L.Trainer(max_steps=8, accelerator="cpu", devices=1, logger=rec, callbacks=[Saver(), cb],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    dl = torch.utils.data.DataLoader(_Tokens(64), batch_size=4)
    trainer.fit(Module(), dl)
    assert [r.step for r in cb.monitor.results] == [0, 4, 8]
    for r in cb.monitor.results:
        _same(r, tmp_path / f"step{r.step}")
    got = [(s, m) for s, m in rec.calls if "neuromfa/E" in m]
    assert [s for s, _ in got] == [0, 4, 8]
    assert got[-1][1] == cb.monitor.results[-1].metrics()
    assert list(nm.load_run(tmp_path / "nmfa").steps) == [0, 4, 8]


@pytest.mark.slow
def test_real_ddp_model_in_a_process_group(tmp_path):
    """A real DistributedDataParallel (gloo, one process): unwrapped, rank 0 analyses."""
    code = f"""
import sys; sys.path.insert(0, {str(TESTS)!r})
import torch, torch.distributed as dist
import neuromfa_native as nm
from neuromfa_native.integrations.monitor import Monitor, _rank
from model_factory import make_model
dist.init_process_group("gloo", init_method="file://{tmp_path}/pg", rank=0, world_size=1)
model = make_model("gpt_neox")
model.save_pretrained({str(tmp_path / 'ck')!r})
ddp = torch.nn.parallel.DistributedDataParallel(model)
assert _rank() == 0
r = Monitor(ddp, background=False, samples={K}, per_layer={S}).step(0)
a = nm.analyze({str(tmp_path / 'ck')!r}, samples={K}, per_layer={S}, n_threads=1)
assert [x.alpha0 for x in a.results] == [x.alpha0 for x in r.results]
dist.destroy_process_group()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# the question while training (docs/spec.md section 13): controls, statistics, the live verdict


@pytest.mark.slow
def test_monitor_with_controls_and_stats_matches_the_offline_series(tmp_path, caplog):
    torch.manual_seed(0)
    model = make_model("gpt_neox").train()
    run = tmp_path / "run"
    ctl = ("gaussian", "shuffle", "scaled")
    with caplog.at_level(logging.INFO, logger="neuromfa_native.integrations.monitor"):
        with Monitor(model, out=run, controls=",".join(ctl), stats=True, **OPTS) as mon:
            for step in (0, 3, 6):
                mon.step(step)
                mon.wait()  # no step dropped because the machine is slow (a waiting request is replaced)
                model.save_pretrained(tmp_path / f"step{step}")
                _train_steps(model, 3, seed=step)
    assert not mon.errors and [r.step for r in mon.results] == [0, 3, 6]
    off = nm.analyze_series([str(tmp_path / f"step{k}") for k in (0, 3, 6)], controls=ctl, stats=True, **OPTS)
    live = nm.load_run(run)
    assert live.control_rows() == off.control_rows()  # every control's E, bit for bit
    np.testing.assert_array_equal(live.quantities()["rms"], off.quantities()["rms"])
    assert live.verdict().to_dict() == off.verdict().to_dict()
    last = mon.results[-1]
    assert last.verdict.to_dict() == off.verdict().to_dict()
    m = last.metrics()
    assert set(monitor_mod.VERDICT_METRICS) <= set(m)
    assert m["neuromfa/gaussian_share"] == last.verdict.gaussian_share
    assert m["neuromfa/remainder_share_hi"] == last.verdict.remainder_share_hi
    assert np.isnan(mon.results[0].metrics()["neuromfa/gaussian_share"])  # the baseline: no E to share
    assert f"neuromfa monitor: step 6: {last.verdict.sentence}" in caplog.text


def test_monitor_with_gaussian_only_logs_no_verdict_metrics():
    model = make_model("gpt_neox")
    mon = Monitor(model, background=False, controls="gaussian", **OPTS)
    try:
        r = mon.step(0)
    finally:
        mon.close()
    assert r is not None and r.verdict is None and set(r.metrics()) == set(monitor_mod.METRICS)
    assert r.results[0].controls["gaussian"].alpha0 > 0


@pytest.mark.slow
def test_trainer_callback_logs_the_live_verdict(tmp_path):
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    from neuromfa_native.integrations.transformers import NeuroMFACallback
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(0)
    cb = NeuroMFACallback(every=4, background=False, controls="gaussian,scaled", stats=True, **OPTS)
    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), max_steps=8, per_device_train_batch_size=4,
                             learning_rate=1e-2, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=make_model("gpt_neox").train(), args=args, train_dataset=_Tokens(64), callbacks=[cb])
    trainer.train()
    logged = [h for h in trainer.state.log_history if "neuromfa/gaussian_share" in h]
    assert [h["neuromfa/step"] for h in logged] == [0.0, 4.0, 8.0]
    assert logged[-1]["neuromfa/remainder_share"] == cb.monitor.results[-1].verdict.remainder_share
    assert cb.monitor.results[-1].verdict.label != "undetermined"


@pytest.mark.parametrize("arch", ["olmoe", "phi3"])
def test_monitor_controls_on_fused_and_expert_tensors_match_the_checkpoint(tmp_path, arch):
    """A fused qkv/gate_up (phi3) and a 3-d expert stack (olmoe): the whole rows the controls and
    statistics read come through the snapshot as from the saved checkpoint."""
    model = make_model(arch)
    model.save_pretrained(tmp_path / "ck")
    opts = dict(samples=2, per_layer=4, n_threads=1, min_edges=3, controls="gaussian,shuffle", stats=True)
    r = Monitor(model, background=False, **opts).step(0)
    a = nm.analyze(str(tmp_path / "ck"), **opts)
    for x, y in zip(a.results, r.results):
        assert x.alpha0 == y.alpha0 and x.weight_stats == y.weight_stats
        for c in ("gaussian", "shuffle"):
            np.testing.assert_array_equal(x.controls[c].tau, y.controls[c].tau)
