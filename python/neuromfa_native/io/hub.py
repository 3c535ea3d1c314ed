"""The Hugging Face hub as a source of checkpoints read by range, in the fewest requests.

How the hub counts (per IP, 5-minute windows): every ``GET /{repo}/resolve/{rev}/{file}`` is a
*resolver* call (anonymous: 3,000; a free account's token: 5,000), every ``/api/...`` call an
*API* call (500; 1,000). Files are served by a ``302`` from ``/resolve`` to a CDN URL that
honours ``Range`` and is not rate-limited. So a revision here costs:

- **one API call** (:func:`revision_info`: ``model_info(files_metadata=True)``, through
  ``huggingface_hub``'s ``HfApi`` at ``HF_ENDPOINT``): its commit, and every file's size, git
  blob id and LFS sha256. Kept for the process, so the fingerprint pass, the analysis and the
  prefetch of the next revision share it. ``--revisions all`` adds one call for the whole repo
  (:func:`list_branches`: ``list_repo_refs``);
- **one resolve per file read** (config, index, each weights shard): files are addressed by the
  revision's *commit* (``/resolve/<commit>/<file>``, so a branch moved mid-run cannot mix two
  versions), the ``302``'s CDN location is remembered (:class:`~.httpfile.HttpFile`) and every
  range goes straight to the CDN; an expired location (403/410) is resolved again. The file
  objects are kept for the process (:func:`hub_file`), so opening the same revision again (a
  worker's next sample, the analysis after the fingerprint pass) resolves nothing.

Rate limits: API calls are paced below the window's budget (500 per 5 minutes, 1,000 with a
token; ``429`` replies and their ``RateLimit`` headers correct it) and a ``429`` is waited out
(:mod:`.ratelimit`, announced as ``"hub rate limit: waiting 41 s"``); resolves read the hub's
``RateLimit`` headers in the transport (:mod:`.http`). ``HF_TOKEN`` (or a stored login) raises
both budgets; it is sent to the hub's host only, never to the CDN.

Identity (:meth:`HubRevision.identity`): the blob ids of ``config.json`` and the weight files'
LFS sha256 (else blob ids): two revisions with the same identity hold byte-identical weight
files and config, known before reading any weight (:func:`hub_fingerprint`).
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import quote

from .._text import one_line
from .base import hub_offline
from .ratelimit import policy


__all__ = ["HubFile", "HubRevision", "commit_of", "hub_file", "hub_fingerprint", "list_branches", "parse_hub_url",
           "pin_url", "refs", "revision_info", "stats"]

T = TypeVar("T")
#: API calls per 5-minute window the pacing stays under (anonymous, and with a token); a 429's
#: RateLimit-Policy header replaces it
API_BUDGET = (500, 1000)
API_WINDOW = 300.0
WEIGHT_NAMES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                "pytorch_model.bin")


def parse_hub_url(url: str) -> tuple[str, Optional[str], str]:
    """``hf://org/name[@revision][/path]`` -> ``(repo, revision or None, path)``. A revision
    with slashes (``refs/pr/1``, ``refs/convert/parquet``) is taken whole."""
    if not url.startswith("hf://"):
        raise ValueError(f"{url!r} is not an hf:// URL")
    body = url[len("hf://"):].strip("/")
    head, at, rest = body.partition("@")
    parts = head.split("/")
    if at:
        repo, path = head, ""
        bits = rest.split("/")
        if rest.startswith("refs/") and len(bits) >= 3:
            rev, path = "/".join(bits[:3]), "/".join(bits[3:])
        else:
            rev, _, path = rest.partition("/")
    else:
        repo, rev, path = "/".join(parts[:2]), None, "/".join(parts[2:])
    if repo.count("/") != 1 or not all(repo.split("/")) or (at and not rev):
        raise ValueError(f"{url!r}: expected hf://org/name[@revision][/file]")
    return repo, (rev or None), path


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise ValueError("reading from the hub needs huggingface_hub (pip install huggingface_hub)") from None
    return huggingface_hub


def endpoint() -> str:
    """``HF_ENDPOINT`` as set now (else huggingface_hub's), without a trailing slash."""
    ep = os.environ.get("HF_ENDPOINT") or getattr(_hub().constants, "ENDPOINT", None) or "https://huggingface.co"
    return str(ep).rstrip("/")


def token() -> Optional[str]:
    """The user's hub token (``HF_TOKEN``, or a stored login), or None."""
    try:
        return _hub().get_token()
    except Exception:  # noqa: BLE001 - a broken token store must not stop anonymous reading
        return None


# ----------------------------------------------------------------------------- API calls
class _ApiPacer:
    """Our API calls in the current window of each endpoint, kept below its budget (thread-safe):
    the documented one until a 429's ``RateLimit-Policy`` says another."""

    def __init__(self) -> None:
        self.sent: dict = {}  # endpoint -> deque of send times
        self.policy: dict = {}  # endpoint -> (quota, window seconds), learnt from a 429
        self.lock = threading.Lock()

    def before(self, ep: str, authenticated: bool) -> None:
        limits = _limits()
        while True:
            with self.lock:
                now = time.monotonic()
                quota, window = self.policy.get(ep, (API_BUDGET[1 if authenticated else 0], API_WINDOW))
                sent = self.sent.setdefault(ep, deque())
                while sent and now - sent[0] > window:
                    sent.popleft()
                if len(sent) < max(1, int(quota * 0.98)):
                    sent.append(now)
                    return
                wait = window - (now - sent[0]) + 0.5
            limits.wait(wait, f"hub rate limit (api): waiting {wait:.0f} s")

    def learn(self, ep: str, headers: dict) -> None:
        p = policy(headers)  # the transport's reading of the header (numbers bounded)
        if p is not None:
            with self.lock:
                self.policy[ep] = p


_PACER = _ApiPacer()


class _Stats:
    """Counters of this process (mutable on purpose: not a result)."""

    __slots__ = ("api_calls",)

    def __init__(self) -> None:
        self.api_calls = 0


#: counts of this process's hub API calls (resolves are counted by the transport, kind ``resolvers``)
stats = _Stats()


def _limits() -> Any:
    from .http import transport  # the HTTP stack is imported only when the hub is asked

    return transport().limits


_OFFLINE = ("{what}: the hub is not asked in offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE, set now or "
            "when huggingface_hub was imported); read the revision with --cache keep from the local cache, or "
            "run again without it")


def api_call(fn: Callable[[Any], T], what: str) -> T:
    """``fn(HfApi(endpoint=...))``, paced below the API budget, a ``429`` waited out (as often
    as it takes), a network failure tried 3 times; the hub's errors become one-line ValueErrors."""
    hub = _hub()
    from huggingface_hub.utils import HfHubHTTPError

    if hub_offline():  # the environment says offline though huggingface_hub may not (it reads it once)
        raise ValueError(_OFFLINE.format(what=what))
    tok, ep = token(), endpoint()
    api = hub.HfApi(endpoint=ep, token=tok)
    limits = _limits()
    fails = 0
    while True:
        _PACER.before(ep, tok is not None)
        stats.api_calls += 1
        try:
            return fn(api)
        except HfHubHTTPError as exc:
            resp = getattr(exc, "response", None)
            code = getattr(resp, "status_code", None)
            if code == 429 and resp is not None:
                headers = {k.lower(): v for k, v in resp.headers.items()}
                _PACER.learn(ep, headers)
                wait = limits.retry_after(headers)
                limits.wait(wait, f"hub rate limit (api): waiting {wait:.0f} s")
                continue
            if code is None or (code < 500 and code != 408):
                raise ValueError(_hub_error(exc, what)) from exc
            last: Exception = exc  # a server error: tried again
        except ValueError as exc:  # a malformed repository id or revision (huggingface_hub's check)
            raise ValueError(f"{what}: {_first_line(exc) or type(exc).__name__}") from exc
        except Exception as exc:  # noqa: BLE001 - the API client's network errors (httpx), offline mode
            if isinstance(exc, getattr(hub.errors, "OfflineModeIsEnabled", ())):
                raise ValueError(_OFFLINE.format(what=what)) from exc
            last = exc
        fails += 1
        if fails >= 3:
            msg = _first_line(last)
            raise ValueError(f"{what}: the hub could not be reached after 3 tries ({type(last).__name__}: {msg})") \
                from last
        time.sleep(0.5 * 2 ** fails)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error from the hub or its client, for a message: it comes from a
    server (``HF_ENDPOINT`` may be anyone), so it is escaped and cut at ``limit`` characters."""
    text = str(exc)
    line = one_line(text.splitlines()[0] if text else "")
    return line if len(line) <= limit else line[:limit] + f"... ({len(line) - limit} more characters)"


def _hub_error(exc: Exception, what: str) -> str:
    name = type(exc).__name__
    if name in ("RepositoryNotFoundError", "GatedRepoError"):
        return f"{what}: repository not found on the hub (or private/gated: set HF_TOKEN)"
    if name == "RevisionNotFoundError":
        return f"{what}: no such revision on the hub"
    return f"{what}: the hub answered {name}: {_first_line(exc)}"


# ----------------------------------------------------------------------------- revisions
@dataclass(frozen=True)
class HubFile:
    """One file of a revision: its size, git blob id and LFS sha256 (None if not in LFS)."""

    name: str
    size: Optional[int]
    blob_id: Optional[str]
    sha256: Optional[str]


@dataclass(frozen=True)
class HubRevision:
    """What the hub says about one revision of a model repository (one API call)."""

    repo: str
    revision: str
    commit: str
    files: tuple

    def file(self, name: str) -> Optional[HubFile]:
        for f in self.files:
            if f.name == name:
                return f
        return None

    def weights(self) -> str:
        """The file to read the weights from: the first of ``model.safetensors.index.json``,
        ``model.safetensors``, a single ``*.safetensors``, ``pytorch_model.bin.index.json``,
        ``pytorch_model.bin`` in the revision (safetensors first, as a download would)."""
        names = {f.name for f in self.files}
        singles = sorted(n for n in names if n.endswith(".safetensors") and "/" not in n)
        for cand in WEIGHT_NAMES[:2]:
            if cand in names:
                return cand
        if len(singles) == 1:
            return singles[0]
        for cand in WEIGHT_NAMES[2:]:
            if cand in names:
                return cand
        raise ValueError(f"{self.repo}@{self.revision}: no weights in this revision: tried {list(WEIGHT_NAMES)} "
                         f"(files: {sorted(names)[:20]})")

    def identity(self) -> str:
        """Blob ids and LFS hashes of ``config.json`` and the weight files (the index and every
        file of its kind), hex: equal identities mean byte-identical weights and config."""
        w = self.weights()
        kind = ".safetensors" if "safetensors" in w else ".bin"
        chosen = sorted((f for f in self.files if f.name == "config.json" or f.name == w
                         or (w.endswith(".index.json") and f.name.endswith(kind) and "/" not in f.name)),
                        key=lambda f: f.name)
        h = hashlib.blake2b(digest_size=16)
        h.update(b"hub-v1\0")
        for f in chosen:
            h.update(f"{f.name}\0{f.sha256 or f.blob_id}\0{f.size}\0".encode())
        return h.hexdigest()

    def resolve_url(self, name: str) -> str:
        return f"{endpoint()}/{self.repo}/resolve/{self.commit}/{quote(name)}"


_INFO: OrderedDict = OrderedDict()
_INFO_LOCK = threading.Lock()
_KEY_LOCKS: dict = {}


_REFS: dict = {}  # (endpoint, repo) -> [(name, commit, is_branch)]
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def refs(repo: str) -> list:
    """``[(name, commit, is_branch), ...]``: every branch and tag (one ``list_repo_refs`` call,
    kept for the process)."""
    key = (endpoint(), repo)
    with _INFO_LOCK:
        if key in _REFS:
            return _REFS[key]
    got = api_call(lambda api: api.list_repo_refs(repo), repo)
    out = [(b.name, b.target_commit, True) for b in got.branches] + [(t.name, t.target_commit, False) for t in got.tags]
    with _INFO_LOCK:
        _REFS[key] = out
    return out


def commit_of(repo: str, revision: Optional[str]) -> Optional[str]:
    """The commit a revision names, if known without a call: a 40-hex commit itself, or a
    branch or tag of a repository whose refs were listed (:func:`refs`)."""
    rev = revision or "main"
    if _HEX40.match(rev):
        return rev
    with _INFO_LOCK:
        listed = _REFS.get((endpoint(), repo))
        info = _INFO.get((endpoint(), repo, rev))
    if info is not None:
        return info.commit
    for name, commit, _ in listed or ():
        if name == rev:
            return commit
    return None


def revision_info(repo: str, revision: Optional[str]) -> HubRevision:
    """The revision's commit and files (one API call, asked by commit when the commit is known;
    kept for the process, bounded)."""
    rev = revision or "main"
    key = (endpoint(), repo, rev)
    commit = commit_of(repo, rev)
    if commit is not None and commit != rev:
        with _INFO_LOCK:
            hit = _INFO.get((key[0], repo, commit))
        if hit is not None:
            return HubRevision(repo, rev, hit.commit, hit.files)
    with _INFO_LOCK:
        if key in _INFO:
            _INFO.move_to_end(key)
            return _INFO[key]
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:  # the prefetch thread and the main thread never ask twice
        with _INFO_LOCK:
            if key in _INFO:
                return _INFO[key]
        ask = commit or rev
        info = api_call(lambda api: api.model_info(repo, revision=ask, files_metadata=True), f"{repo}@{rev}")
        files = tuple(HubFile(s.rfilename, s.size, s.blob_id, (s.lfs or {}).get("sha256") if s.lfs else None)
                      for s in (info.siblings or ()))
        if not info.sha:
            raise ValueError(f"{repo}@{rev}: the hub gave no commit for this revision")
        out = HubRevision(repo, rev, str(info.sha), files)
        with _INFO_LOCK:
            _INFO[key] = out
            _INFO[(key[0], repo, out.commit)] = out
            while len(_INFO) > 4096:
                _INFO.popitem(last=False)
            _KEY_LOCKS.pop(key, None)
        return out


def list_branches(repo: str) -> list:
    """``[(branch, commit), ...]`` of every branch but ``main``, in the hub's order (the one
    :func:`refs` call)."""
    return [(n, c) for n, c, is_branch in refs(repo) if is_branch and n != "main"]


def hub_fingerprint(repo: str, revision: Optional[str]) -> str:
    """The fingerprint of a hub revision from the hub's own hashes (no byte of it is read):
    equal for revisions with byte-identical weight files and config."""
    return revision_info(repo, revision).identity()


_FILES: OrderedDict = OrderedDict()


def hub_file(rev: HubRevision, name: str) -> Any:
    """The process's :class:`~.httpfile.HttpFile` of one file of a revision (by commit): its
    resolved CDN location and pinned version are reused by every reader of that file."""
    from .httpfile import HttpFile

    f = rev.file(name)
    key = (endpoint(), rev.repo, rev.commit, name)
    with _INFO_LOCK:
        hf = _FILES.get(key)
        if hf is not None:
            _FILES.move_to_end(key)
            return hf
        tok = token()
        hf = HttpFile(rev.resolve_url(name), name=f"hf://{rev.repo}@{rev.revision}/{name}",
                      size=f.size if f is not None else None,
                      headers={"Authorization": f"Bearer {tok}"} if tok else None, what="hub")
        _FILES[key] = hf
        while len(_FILES) > 512:
            _FILES.popitem(last=False)
        return hf


def pin_url(url: str) -> str:
    """``hf://org/name@rev[/path]`` with ``rev`` replaced by its commit when this process knows
    it (tasks sent to other processes then read the commit the run planned with); other URLs
    as they are."""
    if not url.startswith("hf://"):
        return url
    repo, rev, path = parse_hub_url(url)
    commit = commit_of(repo, rev)
    return url if commit is None else f"hf://{repo}@{commit}" + (f"/{path}" if path else "")
