"""What both callbacks share: options, the schedule and the hand-over of finished results."""
from __future__ import annotations

import collections
import threading
from typing import Any, Optional

from ..monitor import Monitor, MonitorResult


def check_every(every: Any) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive number of optimizer steps, got {every!r}")
    return every


class Feed:
    """A :class:`Monitor` whose finished results wait for the training thread to log them
    (loggers are not thread-safe: results made on the worker are logged by the caller)."""

    def __init__(self, model: Any, out: Any, samples: Any, per_layer: int, background: bool, strict: bool,
                 options: dict):
        self._ready: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self.monitor = Monitor(model, out, samples=samples, per_layer=per_layer, background=background,
                               strict=strict, on_result=self._put, **options)

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
    return None if mon is None or not mon._requested else mon._requested[-1]
