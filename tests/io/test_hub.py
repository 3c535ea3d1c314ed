"""Hub series through an emulated hub on 127.0.0.1 (hub_emulator.py), reached the way the real
one is: HF_ENDPOINT, huggingface_hub's HfApi and snapshot_download, /resolve answering 302 to a
CDN on another host, rate limits with RateLimit headers and 429."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub_emulator import HubEmulator
from tiny_series import make_series_dirs
from neuromfa_native.run.runner import analyze_series

pytest.importorskip("huggingface_hub", reason="huggingface_hub is optional (the hub extra); it is the hub's API client")
OPTS = dict(samples=3, per_layer=8, n_threads=1)
REVS = ["step0", "step10", "step100", "step1000"]  # step1000: the same files as step10


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    return make_series_dirs(tmp_path_factory.mktemp("steps"), [0, 10, 100])


@pytest.fixture(scope="module")
def local(steps, tmp_path_factory):
    """The same series from local folders (step1000: a copy of step10's folder)."""
    copy = shutil.copytree(steps[1], tmp_path_factory.mktemp("copy") / "step1000")
    return analyze_series([steps[0], steps[1], steps[2], str(copy)], steps=[0, 10, 100, 1000], check_identical=False,
                          **OPTS)


def _revs(steps):
    return {"step0": steps[0], "step10": steps[1], "step100": steps[2], "step1000": steps[1]}


@pytest.fixture
def hub_env(monkeypatch, tmp_path, hub_mode):
    """Point this process at an emulated hub: HF_ENDPOINT, an empty cache, no token."""
    import huggingface_hub.constants as hc

    from neuromfa_native.io.sources import hub_snapshot

    def use(hub):
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        hub_mode(offline=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(hc, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
        monkeypatch.setattr(hc, "HF_HUB_DISABLE_XET", True, raising=False)
        hub_snapshot.cache_clear()

    return use


def _alpha0(series):
    return [[r.alpha0 for r in rs] for rs in series.results]


@pytest.mark.parametrize("cache", ["keep", "evict", "none"])
@pytest.mark.slow
def test_hub_series_in_each_cache_mode_equals_the_local_analysis(steps, local, hub_env, tmp_path, cache) -> None:
    with HubEmulator({"org/m": _revs(steps)}) as hub:
        hub_env(hub)
        with pytest.warns(UserWarning, match="step10 = step1000"):
            s = analyze_series("org/m", revisions=REVS, cache=cache, out=tmp_path / "run", **OPTS)
        served = hub.bytes_served - hub.api_bytes  # the API's JSON goes through huggingface_hub, not counted
        resolved = {name for _, name in hub.resolves}
    assert _alpha0(s) == _alpha0(local)
    assert [r.spectrum for rs in s.results for r in rs] == [r.spectrum for rs in local.results for r in rs]
    assert s.identical_to[3] == "step10" and "identical to step10" in s.notes[3] and "hub" in s.notes[3]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    if cache == "none":  # what the run says it read is what the server sent (config, headers, rows)
        assert run["reading"]["bytes_read"] == served
        assert resolved == {"config.json", "model.safetensors"}
    else:  # each distinct revision's weights downloaded once (evict: no header read to fingerprint)
        size = (Path(steps[0]) / "model.safetensors").stat().st_size
        assert 3 * size <= served <= 3 * size + 64 * 1024


@pytest.mark.slow
def test_a_revision_costs_one_api_call_and_one_resolve_per_file(steps, local, hub_env, tmp_path) -> None:
    """--cache none: at most (files read + 2) resolves and 3 API calls per revision, however
    many samples; an identical revision is not read at all."""
    from neuromfa_native.io.http import transport

    with HubEmulator({"org/m": _revs(steps)}) as hub:
        hub_env(hub)
        before = transport().counts().get("resolvers", (0, 0))[0]
        with pytest.warns(UserWarning, match="identical"):
            s = analyze_series("org/m", revisions=REVS, cache="none", **{**OPTS, "samples": 8})
        resolves, api = list(hub.resolves), list(hub.api)
        step1000 = hub.commit("org/m", "step1000")
    assert len(s.results[0]) == 8
    by_rev: dict = {}
    for rev, name in resolves:
        by_rev.setdefault(rev, []).append(name)
    assert step1000 not in by_rev  # identical to step10: no byte of it read
    assert len(by_rev) == 3 and all(sorted(v) == ["config.json", "model.safetensors"] for v in by_rev.values())
    assert len(api) <= 3 * len(REVS) and api.count("refs/") == 1
    assert transport().counts()["resolvers"][0] - before == len(resolves)  # the transport counts what it sent


@pytest.mark.slow
def test_rate_limited_run_completes_with_the_same_numbers(steps, local, hub_env, tmp_path, caplog) -> None:
    """A hub whose budgets are two requests per 1-second window: the run waits (saying so)
    instead of failing, and its numbers are those of the unlimited run."""
    limits = {"api": (2, 1), "resolvers": (2, 1)}
    with HubEmulator({"org/m": _revs(steps)}, limits=limits) as hub:
        hub_env(hub)
        messages: list = []
        from neuromfa_native.io.ratelimit import status_reporter

        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="neuromfa_native"), status_reporter(messages.append), \
                pytest.warns(UserWarning, match="identical"):
            s = analyze_series("org/m", revisions=REVS, cache="none", **OPTS)
        seconds = time.monotonic() - t0
    assert _alpha0(s) == _alpha0(local)
    waits = [m for m in messages if m]
    assert waits and all(m.startswith("hub rate limit") and m.endswith(" s") for m in waits)
    assert seconds >= 1.0  # 5 API calls and 6 resolves at 2 per 1 s: at least one window waited out


@pytest.mark.slow
def test_429_is_waited_out_not_failed(steps, hub_env) -> None:
    """A hub that answers 429 at once (its budget already spent by others on the same IP):
    Retry-After is honoured, the read succeeds."""
    from neuromfa_native.io.sources import resolve_source

    with HubEmulator({"org/m": _revs(steps)}, limits={"resolvers": (1, 2)}) as hub:
        hub_env(hub)
        hub._limit("resolvers")  # somebody else took the window's only resolve
        src = resolve_source("hf://org/m@step0")
        assert src.config["model_type"] == "gpt_neox"
        assert hub.n_429 >= 1


def test_revisions_all_and_globs_use_one_refs_call(steps, hub_env) -> None:
    from neuromfa_native.run.checkpoints import make_series

    with HubEmulator({"org/m": _revs(steps)}) as hub:
        hub_env(hub)
        every = make_series("org/m", revisions="all")
        some = make_series("org/m", revisions=["step1*"])
        api = list(hub.api)
    assert [c.label for c in every] == REVS and [c.step for c in every] == [0, 10, 100, 1000]
    assert [c.label for c in some] == ["step10", "step100", "step1000"]
    assert api == ["refs/"]  # listed once for the process, "main" left out
    with pytest.raises(ValueError, match=r"'nope\*' matches no branch of org/m"):
        with HubEmulator({"org/m": _revs(steps)}) as hub:
            hub_env(hub)
            make_series("org/m", revisions=["nope*"])


@pytest.mark.parametrize("how", ["environment", "huggingface_hub"])
def test_offline_mode_is_one_answer_and_the_hub_is_not_asked(steps, hub_env, monkeypatch, how) -> None:
    """huggingface_hub reads HF_HUB_OFFLINE once, at import; the variable can differ from it later.
    Either one saying offline: no request reaches the hub, and the error says offline mode."""
    import huggingface_hub.constants as hc

    from neuromfa_native.io.hub import revision_info

    with HubEmulator({"org/m": _revs(steps)}) as hub:
        hub_env(hub)
        if how == "environment":  # set after huggingface_hub was imported online
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        else:  # set when it was imported, unset since
            monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
        with pytest.raises(ValueError, match=r"org/m@step10: the hub is not asked in offline mode"):
            revision_info("org/m", "step10")
        assert not hub.api and not hub.resolves


def test_hub_offline_reads_the_environment_and_a_loaded_huggingface_hub(monkeypatch) -> None:
    import types

    from neuromfa_native.io.base import hub_offline

    for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(v, raising=False)
    fake = types.ModuleType("huggingface_hub.constants")
    monkeypatch.setitem(sys.modules, "huggingface_hub.constants", fake)
    assert hub_offline() is False  # loaded, no mode attribute: online
    fake.HF_HUB_OFFLINE = True  # huggingface_hub < 1.0 (a constant)
    assert hub_offline() is True
    fake.is_offline_mode = lambda: False  # >= 1.0 (a function, preferred)
    assert hub_offline() is False
    monkeypatch.delitem(sys.modules, "huggingface_hub.constants")
    assert hub_offline() is False  # not loaded: only the environment counts, nothing is imported
    assert "huggingface_hub.constants" not in sys.modules
    for v, val in (("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "yes")):
        monkeypatch.setenv(v, val)
        assert hub_offline() is True
        monkeypatch.delenv(v)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert hub_offline() is False


@pytest.mark.slow
def test_expired_cdn_urls_are_resolved_again(steps, hub_env) -> None:
    from neuromfa_native.io.sources import resolve_source
    from neuromfa_native.network.nin import build_nin

    with HubEmulator({"org/m": _revs(steps)}, cdn_ttl=1.0) as hub:
        hub_env(hub)
        src = resolve_source("hf://org/m@step10")
        first, cdn = len(hub.resolves), hub.cdn
        time.sleep(1.2)  # the remembered CDN URL has expired
        net = build_nin(src, sample=1, per_layer=8)
        again = len(hub.resolves) - first
        assert 1 <= again <= 2 and hub.cdn - cdn > 5 * again  # resolved again once (twice on a slow machine), not per range
    assert (net.edge_array() == build_nin(steps[1], sample=1, per_layer=8).edge_array()).all()


def test_the_token_goes_to_the_hub_only(steps, hub_env, monkeypatch) -> None:
    from neuromfa_native.io.sources import resolve_source
    from neuromfa_native.network.nin import build_nin

    with HubEmulator({"org/m": _revs(steps)}) as hub:
        hub_env(hub)
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        build_nin(resolve_source("hf://org/m@step100"), sample=0, per_layer=8)
        auth = {k: set(v) for k, v in hub.auth.items()}
    assert auth["hub"] == {"Bearer hf_secret"}  # API calls and resolves
    assert auth["cdn"] == {None}  # never to the CDN's host


@pytest.mark.slow
def test_killed_hub_run_resumes(steps, local, tmp_path) -> None:
    """SIGKILL a --cache none series while the (slow) hub serves the second revision: the rerun
    reuses the stored results and computes the rest, equal to the local analysis."""
    out = tmp_path / "run"
    files = lambda: sorted((out / "results").rglob("*.npz")) if (out / "results").exists() else []  # noqa: E731
    code = ("import warnings; warnings.simplefilter('ignore'); from neuromfa_native.run.runner import analyze_series; "
            f"analyze_series('org/m', revisions={REVS!r}, cache='none', out={str(out)!r}, samples=3, per_layer=8, "
            "n_threads=1)")
    with HubEmulator({"org/m": _revs(steps)}, latency=0.05) as hub:
        env = dict(__import__("os").environ, HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_TELEMETRY="1",
                   HF_TOKEN_PATH=str(tmp_path / "no-token"))
        env.pop("HF_TOKEN", None)
        env.pop("HF_HUB_OFFLINE", None)
        env.pop("TRANSFORMERS_OFFLINE", None)
        p = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while len(files()) < 3 and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert p.poll() is None, p.stderr.read().decode() if p.stderr else ""
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
            p.stderr.close()
        assert 3 <= len(files()) < 9
        done = len(files())
        rerun = subprocess.run([sys.executable, "-c", code.replace("analyze_series(", "s = analyze_series(")
                                + "; print('N', s.n_reused, s.n_computed)"], env=env, capture_output=True, text=True,
                               timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    reused, computed = map(int, rerun.stdout.split("N", 1)[1].split())
    assert reused == done and reused + computed == 9
    from neuromfa_native.run.store import load_run

    assert _alpha0(load_run(out)) == _alpha0(local)


def test_the_hubs_errors_are_one_line_value_errors(steps, hub_env, monkeypatch) -> None:
    from neuromfa_native.io import hub as hubmod
    from neuromfa_native.io.sources import resolve_source

    with HubEmulator({"org/m": _revs(steps)}) as hub:
        hub_env(hub)
        with pytest.raises(ValueError, match=r"^org/m@step7: no such revision on the hub$"):
            resolve_source("hf://org/m@step7")
        with pytest.raises(ValueError, match=r"^org/none@main: repository not found on the hub \(or private/gated: "
                                             r"set HF_TOKEN\)$"):
            resolve_source("hf://org/none")
        with pytest.raises(ValueError, match=r"hf://org/m@step0/nothing.bin: the revision has no file 'nothing.bin'"):
            resolve_source("hf://org/m@step0/nothing.bin")
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(hubmod.time, "sleep", lambda s: None)  # the retries' pauses
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ValueError, match=r"^org/m@step100: the hub could not be reached after 3 tries \("):
        resolve_source("hf://org/m@step100")


@pytest.mark.slow
def test_executor_tasks_read_the_commit_the_run_planned_with(steps, local, hub_env, monkeypatch) -> None:
    """--cache none with an executor: each task carries hf://org/m@<commit> (not the branch), and
    the numbers are the local ones."""
    from concurrent.futures import ThreadPoolExecutor

    from neuromfa_native.run import runner

    sent = []
    real = runner._sample_task
    monkeypatch.setattr(runner, "_sample_task", lambda src, *a, **k: sent.append(src) or real(src, *a, **k))
    with HubEmulator({"org/m": _revs(steps)}) as hub, ThreadPoolExecutor(2) as ex:
        hub_env(hub)
        with pytest.warns(UserWarning, match="identical"):
            s = analyze_series("org/m", revisions=REVS, cache="none", executor=ex, **OPTS)
        commits = {hub.commit("org/m", r) for r in REVS}
    assert _alpha0(s) == _alpha0(local)
    assert sent and all(src.split("@", 1)[1] in commits for src in sent)


def test_an_error_line_from_the_hub_is_escaped_and_cut() -> None:
    """The hub's (or any HF_ENDPOINT's) error text enters our message escaped, one line, bounded."""
    from neuromfa_native.io.hub import _hub_error

    exc = RuntimeError("\x1b[31m" + "x" * 5000 + "\nsecond line")
    assert _hub_error(exc, "org/m") == ("org/m: the hub answered RuntimeError: \\x1b[31m" + "x" * 292
                                        + "... (4708 more characters)")
    assert _hub_error(RuntimeError("short"), "org/m") == "org/m: the hub answered RuntimeError: short"
    assert _hub_error(RuntimeError(), "org/m") == "org/m: the hub answered RuntimeError: "
