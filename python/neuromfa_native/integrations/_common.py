"""What both callbacks share: options, the schedule and the hand-over of finished results."""
from __future__ import annotations

import collections
import threading
from typing import Any, Optional

from .monitor import Monitor, MonitorResult, monitor_config

#: options of :class:`Monitor` that are not analysis options
EXECUTION = ("peft", "n_threads", "overwrite")


def check_every(every: Any) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive number of optimizer steps, got {every!r}")
    return every


def monitor_options(out: Any, samples: Any, per_layer: Any, background: bool, strict: bool, options: dict) -> dict:
    """The keyword arguments of :class:`Monitor`, the analysis options (``config=`` and
    keywords) validated once, into one :class:`~neuromfa_native.AnalysisConfig`, when the
    callback is made."""
    options = dict(options)
    run = {k: options.pop(k) for k in EXECUTION if k in options}
    config = monitor_config(options.pop("config", None), samples=samples, per_layer=per_layer, **options)
    return dict(out=out, config=config, background=background, strict=strict, **run)


class Feed:
    """A :class:`Monitor` whose finished results wait for the training thread to log them
    (loggers are not thread-safe: results made on the worker are logged by the caller)."""

    def __init__(self, model: Any, options: dict):
        self._ready: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self.monitor = Monitor(model, on_result=self._put, **options)

    def _put(self, res: MonitorResult) -> None:
        with self._lock:
            self._ready.append(res)

    def pop(self) -> list:
        with self._lock:
            out = list(self._ready)
            self._ready.clear()
        return out


def metrics_of(res: MonitorResult) -> dict:
    """The logged values: the five metrics and the step they describe."""
    return {**res.metrics(), "neuromfa/step": float(res.step)}


def last_requested(mon: Optional[Monitor]) -> Optional[int]:
    return None if mon is None or not mon.requested else mon.requested[-1]
