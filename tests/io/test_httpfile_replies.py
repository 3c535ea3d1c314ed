"""HttpFile's answers to replies no test server sends (io/httpfile.py), each against a scripted
client: every sentence it prints on a refused reply, and the bounds on the numbers it reads from
headers (a Content-Range or a size of thousands of digits is malformed, not a crash)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Optional

import pytest

from neuromfa_native.io.http import Reply
from neuromfa_native.io.httpfile import HttpFile

ORIGIN = "http://origin.test/org/m/resolve/abc/model.safetensors"
CDN = "http://cdn.test/blob/xyz"


class Scripted:
    """A transport whose every exchange is answered by ``answer(method, url, headers)`` ->
    ``(status, headers, body)``; ``accept`` is applied as the transport applies it."""

    def __init__(self, answer: Callable[[str, str, Mapping[str, str]], tuple]):
        self.answer = answer
        self.asked: list = []

    def exchange(self, method: str, url: str, headers: Optional[Mapping[str, str]] = None, *, cap: int,
                 accept: Optional[Callable] = None, what: str = "server", tally: Optional[list] = None) -> Reply:
        self.asked.append((method, url))
        status, hdrs, body = self.answer(method, url, dict(headers or {}))
        if accept is not None:
            accept(status, hdrs)
        return Reply(status, hdrs, body, url)


def _file(answer, size: Optional[int] = 100) -> tuple[HttpFile, Scripted]:
    client = Scripted(answer)
    return HttpFile(ORIGIN, name="hf://org/m@main/model.safetensors", size=size, client=client), client  # type: ignore[arg-type]


def test_a_content_range_of_thousands_of_digits_is_malformed_not_a_crash() -> None:
    f, _ = _file(lambda m, u, h: (206, {"content-range": "bytes 0-" + "9" * 5000 + "/100"}, b""))
    with pytest.raises(ValueError, match=r"model.safetensors: a 206 reply without a valid Content-Range"):
        f.fetch(0, 10)


@pytest.mark.parametrize("size", ["\u00b2", "9" * 5000, "-1"])
def test_a_size_that_is_not_a_plain_number_is_no_size(size) -> None:
    f, _ = _file(lambda m, u, h: (200, {"x-linked-size": size}, b""), size=None)
    with pytest.raises(ValueError, match=r"model.safetensors: the server does not say the file's size"):
        f.head()


def test_a_redirect_without_a_location_is_refused() -> None:
    f, _ = _file(lambda m, u, h: (302, {}, b""))
    with pytest.raises(ValueError, match=r"model.safetensors: a 302 redirect without a Location$"):
        f.fetch(0, 10)


def test_a_location_refused_twice_is_an_error_after_one_new_resolve_each() -> None:
    def answer(method, url, headers):
        return (302, {"location": CDN}, b"") if url == ORIGIN else (403, {}, b"")

    f, client = _file(answer)
    with pytest.raises(ValueError, match=r"model.safetensors: the server refused the file's location twice "
                                         r"\(HTTP 403/410\)"):
        f.fetch(0, 10)
    assert [u for _, u in client.asked] == [ORIGIN, CDN, ORIGIN, CDN]
    assert "Authorization" not in str(client.asked)


@pytest.mark.parametrize("status, said", [
    (416, r"range not satisfiable \(HTTP 416\): the file is shorter than its header says"),
    (401, r"access refused \(HTTP 401\); a gated or private repository needs a token \(HF_TOKEN\)"),
    (418, r"unexpected HTTP 418"),
])
def test_each_refusal_is_one_sentence_naming_the_file(status, said) -> None:
    f, _ = _file(lambda m, u, h: (status, {}, b""))
    with pytest.raises(ValueError, match=r"^hf://org/m@main/model.safetensors: " + said + "$"):
        f.fetch(0, 10)


def test_a_plain_server_refusing_access_gets_no_token_hint() -> None:
    client = Scripted(lambda m, u, h: (403, {}, b""))
    f = HttpFile("http://plain.test/m.safetensors", size=100, client=client)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^http://plain.test/m.safetensors: access refused \(HTTP 403\)$"):
        f.fetch(0, 10)


def test_a_whole_small_file_answered_by_a_range_is_refused() -> None:
    f, _ = _file(lambda m, u, h: (206, {"content-range": "bytes 0-9/100"}, b"x" * 10))
    with pytest.raises(ValueError, match=r"a whole file was asked for and HTTP 206 came back"):
        f.read_small(1 << 20)


def test_a_head_whose_redirect_target_refuses_says_access_refused() -> None:
    def answer(method, url, headers):
        return (302, {"location": CDN}, b"") if url == ORIGIN else (410, {}, b"")

    f, _ = _file(answer, size=None)
    with pytest.raises(ValueError, match=r"model.safetensors: unexpected HTTP 410$"):
        f.head()
    f, _ = _file(lambda m, u, h: (302, {"location": CDN}, b"") if u == ORIGIN else (403, {}, b""))
    with pytest.raises(ValueError, match=r"model.safetensors: access refused \(HTTP 403\)"):
        f.read_small(100)
