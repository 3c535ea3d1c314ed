"""Range reads against servers that misbehave (hostile_server.py): every answer that is not what
was asked is refused with a one-line error naming the file, never used; a file replaced
mid-run is an error, not a mix; a body is read against a cap; a trickle is cut off; a fuzz
campaign mixes them all at random (bounded in rounds and time, the server stopped by the test)."""

from __future__ import annotations

import os
import random
import shutil
import time

import numpy as np
import pytest
from hostile_server import BEHAVIOURS, HostileServer
from neuromfa_native.io import http, httpfile
from neuromfa_native.io.remote import resolve_url
from neuromfa_native.network.nin import build_nin


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(tiny_model("gpt_neox"), root / "m")
    return root


@pytest.fixture(autouse=True)
def quick_timeouts(monkeypatch):
    """A second for any next byte, and 64 kB/s at least: a trickle fails fast."""
    monkeypatch.setattr(http, "TIMEOUT", 1.0)
    monkeypatch.setattr(http, "MIN_RATE", 64 * 1024)


def _want(served, sample=1):
    return build_nin(served / "m", sample=sample, per_layer=4).edge_array()


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        return int(next(ln for ln in fh if ln.startswith("VmRSS:")).split()[1]) / 1024


def _on_data(how):
    """Misbehave on every range read of the weights (not on the folder probing or config)."""
    return lambda method, name, rng: how if name.endswith(".safetensors") and rng is not None else "ok"


REFUSED = {
    "wrong-start": r"asked for bytes \[\d+, \d+\) and the server answered bytes \[\d+, \d+\); refusing",
    "prefix-200": r"received the whole file \(HTTP 200\): the server ignores Range",
    "changed": r"the file changed on the server during the run",
    "wrong-total": r"the file changed on the server during the run",
    "bad-content-range": r"a 206 reply without a valid Content-Range",
    "huge-length": r"the server announces 1000000000000 bytes where at most \d+ were asked for",
    "trickle": r"failed after 3 tries: .*too slow",
    "redirect-loop": r"more than 5 redirects",
    "503": r"failed after 3 tries: HTTP 503",
    "drop": r"failed after 3 tries",
    "endless": r"received the whole file \(HTTP 200\): the server ignores Range",
}


@pytest.mark.parametrize("how", sorted(REFUSED))
@pytest.mark.slow
def test_an_answer_that_is_not_the_request_is_refused(served, how) -> None:
    with HostileServer(served, _on_data(how)) as srv:
        with pytest.raises(ValueError, match=REFUSED[how]) as err:  # the header's read, or the rows'
            build_nin(resolve_url(srv.url("m")), sample=1, per_layer=4)
    msg = str(err.value)
    assert "\n" not in msg and srv.url("m/model.safetensors") in msg


@pytest.mark.parametrize("how", ["short", "junk", "ok"])
@pytest.mark.slow
def test_answers_that_can_be_completed_give_the_exact_weights(served, how) -> None:
    with HostileServer(served, _on_data(how)) as srv:
        got = build_nin(resolve_url(srv.url("m")), sample=1, per_layer=4).edge_array()
    np.testing.assert_array_equal(got, _want(served))


@pytest.mark.parametrize("how", ["429", "503", "drop", "trickle"])
@pytest.mark.slow
def test_a_failure_once_per_range_is_retried(served, how) -> None:
    """Each range misbehaves once (a 429 is waited out, the others retried), then is answered."""
    seen: set = set()

    def once(method, name, rng):
        if not name.endswith(".safetensors") or rng is None or (name, rng) in seen:
            return "ok"
        seen.add((name, rng))
        return how

    with HostileServer(served, once) as srv:
        got = build_nin(resolve_url(srv.url("m")), sample=1, per_layer=4).edge_array()
    np.testing.assert_array_equal(got, _want(served))


def test_an_endless_config_is_cut_at_its_cap(served) -> None:
    """A config.json streamed without end: an error after at most the cap, memory bounded."""
    before = _rss_mib()
    with HostileServer(served, lambda m, name, rng: "endless" if name == "config.json" else "ok") as srv:
        with pytest.raises(ValueError, match=r"config.json: the server sends more than the 4194304 bytes"):
            resolve_url(srv.url("m"))
    assert _rss_mib() - before < 64


@pytest.mark.slow
def test_a_trickling_server_is_cut_off_in_bounded_time(served) -> None:
    t0 = time.monotonic()
    with HostileServer(served, _on_data("trickle")) as srv:
        with pytest.raises(ValueError, match="too slow"):
            build_nin(resolve_url(srv.url("m")), sample=1, per_layer=4)  # the header's read already
    assert time.monotonic() - t0 < 30  # 3 tries of (1 s + bytes / 64 kB/s) per range, in parallel


def test_a_file_replaced_between_two_reads_is_an_error_not_a_mix(served) -> None:
    """The first reads pin the file's version (ETag); once the server has another, every read
    is refused: no weights from two versions."""
    state = {"n": 0}

    def later(method, name, rng):
        if name.endswith(".safetensors") and rng is not None:
            state["n"] += 1
            return "changed" if state["n"] > 2 else "ok"
        return "ok"

    with HostileServer(served, later) as srv:
        src = resolve_url(srv.url("m"))
        with pytest.raises(ValueError, match="changed on the server during the run"):
            build_nin(src, sample=1, per_layer=4)
    assert isinstance(httpfile.FileChangedError("x"), ValueError)


@pytest.mark.slow
def test_fuzz_a_server_misbehaving_at_random(served) -> None:
    """Rounds of a server that answers each request in a random way (20 % of them hostile): the
    result is the exact network or a one-line ValueError naming the URL; never other numbers.
    ``NEUROMFA_HTTP_FUZZ_ROUNDS`` sets the number of rounds (default 16)."""
    rounds = int(os.environ.get("NEUROMFA_HTTP_FUZZ_ROUNDS", "16"))
    deadline = time.monotonic() + 30 + 15 * rounds
    outcomes = {"exact": 0, "refused": 0}
    used: set = set()
    for r in range(rounds):
        rng = random.Random(r)

        def policy(method, name, byte_range, rng=rng):
            return rng.choice(BEHAVIOURS[1:]) if rng.random() < 0.2 else "ok"

        with HostileServer(served, policy) as srv:
            try:
                got = build_nin(resolve_url(srv.url("m")), sample=r % 3, per_layer=4).edge_array()
            except ValueError as exc:
                assert "\n" not in str(exc) and srv.url("m") in str(exc), str(exc)
                outcomes["refused"] += 1
            else:
                np.testing.assert_array_equal(got, _want(served, r % 3))
                outcomes["exact"] += 1
            used.update(srv.seen)
        assert time.monotonic() < deadline, f"round {r} ran past the campaign's time bound"
    assert sum(outcomes.values()) == rounds
    assert len(used - {"ok"}) >= 8, used  # the campaign met most misbehaviours
