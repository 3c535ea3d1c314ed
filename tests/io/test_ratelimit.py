"""Rate limits (io/ratelimit.py): the hub's RateLimit headers read, a spent bucket waited for
before sending, Retry-After in seconds or as a date, every wait announced."""
from __future__ import annotations

import email.utils
import time

import pytest

from neuromfa_native.io import ratelimit
from neuromfa_native.io.ratelimit import RateLimits, status_reporter

HEADERS = {"ratelimit": '"resolvers";r=1;t=40', "ratelimit-policy": '"fixed window";"resolvers";q=3000;w=300'}


@pytest.fixture
def slept(monkeypatch):
    """A clock that a sleep moves forward (nothing waits for real); the sleeps, in order."""
    waits: list = []
    now = [1000.0]

    def sleep(s):
        waits.append(s)
        now[0] += s

    monkeypatch.setattr(ratelimit.time, "sleep", sleep)
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    return waits


def test_a_spent_bucket_is_waited_for_and_announced(slept) -> None:
    limits = RateLimits()
    limits.observe("hub:443", HEADERS)
    said: list = []
    with status_reporter(said.append):
        limits.before("hub:443", "resolv", "hub")  # 1 left, reserve max(1, 2 % of 3000) = 60: wait
    assert len(slept) == 1 and 39 <= slept[0] <= 40
    assert said[0].startswith("hub rate limit (resolvers): waiting ") and said[0].endswith(" s") and said[1] is None
    limits.before("hub:443", "api", "hub")  # another bucket, nothing known: no wait
    limits.before("other:443", "resolv", "hub")
    assert len(slept) == 1


def test_a_bucket_with_room_counts_the_request(slept) -> None:
    limits = RateLimits()
    limits.observe("h", {"ratelimit": '"api";r=200;t=100', "ratelimit-policy": "q=500;w=300"})
    for _ in range(5):
        limits.before("h", "api", "hub")
    assert not slept and limits._buckets[("h", "api")].remaining == 195


def test_retry_after_in_seconds_as_a_date_or_from_the_ratelimit_header() -> None:
    limits = RateLimits()
    assert limits.retry_after({"retry-after": "7"}) == 7.0
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= limits.retry_after({"retry-after": date}) <= 31
    assert limits.retry_after({"ratelimit": '"api";r=0;t=55'}) == 56.0
    assert limits.retry_after({}) == 10.0
    assert limits.retry_after({"retry-after": "100000"}) == ratelimit.MAX_WAIT  # capped, then asked again
    assert limits.n_429 == 5


def test_waits_go_to_the_log_without_a_reporter(slept, caplog) -> None:
    import logging

    with caplog.at_level(logging.WARNING, logger="neuromfa_native"):
        RateLimits().wait(3, "hub rate limit: waiting 3 s")
    assert slept == [3] and "neuromfa: hub rate limit: waiting 3 s" in caplog.text


def test_overlong_or_non_ascii_numbers_in_rate_limit_headers_are_not_read(slept) -> None:
    """A header's numbers are bounded before arithmetic: a 400-digit reset neither overflows the
    clock nor a 5,000-digit count Python's int-from-string limit; "²" is not a number of seconds."""
    limits = RateLimits()
    limits.observe("h", {"ratelimit": '"api";r=1;t=' + "9" * 400})
    limits.observe("h", {"ratelimit": '"api";r=' + "9" * 5000 + ";t=1"})
    assert not limits._buckets
    assert limits.retry_after({"retry-after": "\u00b2"}) == 10.0  # "²".isdigit() is True; float("²") fails
    assert limits.retry_after({"retry-after": "9" * 5000}) == ratelimit.MAX_WAIT
    assert ratelimit.policy({"ratelimit-policy": "q=" + "9" * 5000 + ";w=300"}) is None
    assert ratelimit.policy({"ratelimit-policy": '"fixed window";"api";q=500;w=300'}) == (500, 300.0)


def test_every_wait_is_at_most_max_wait_the_api_pacer_included(slept) -> None:
    RateLimits().wait(10**9, "hub rate limit: waiting")
    assert slept == [ratelimit.MAX_WAIT]
    from neuromfa_native.io.hub import _ApiPacer

    pacer = _ApiPacer()
    pacer.learn("ep", {"ratelimit-policy": "q=1;w=2000"})  # a window longer than MAX_WAIT
    pacer.before("ep", False)
    pacer.before("ep", False)  # waits out the window in steps of at most MAX_WAIT
    assert slept[1:] == [ratelimit.MAX_WAIT, ratelimit.MAX_WAIT, pytest.approx(200.5)]
