"""``NeuroMFACallback`` for the Hugging Face ``Trainer`` (needs ``transformers``).

::

    from neuromfa_native.integrations.transformers import NeuroMFACallback
    trainer = Trainer(..., callbacks=[NeuroMFACallback(every=500, out="run-nmfa")])
    trainer.train()          # returns when every analysis is finished and written

The callback analyses the model before the first step (the baseline of E), every ``every``
optimizer steps and at the end of training, and logs ``neuromfa/alpha0``, ``neuromfa/width``,
``neuromfa/E``, ``neuromfa/E_lo``, ``neuromfa/E_hi`` (and ``neuromfa/step``, the step the
values describe) with ``Trainer.log``: they land in ``trainer.state.log_history`` and in every
logger the trainer reports to (TensorBoard, W&B, MLflow, ...).  A background analysis is
logged at the first optimizer step after it finishes, so its log entry's ``step`` may be later
than ``neuromfa/step``; with ``background=False`` they are equal.  On distributed runs only
the main process analyses.

The trainer is found from the callback's caller (the ``Trainer`` that calls it); if it cannot
be found, results go to ``state.log_history`` only, with a warning.
"""
from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from typing import Any, Optional, Union

from transformers import Trainer, TrainerCallback

from ..config import DEFAULT
from ._common import Feed, check_every, metrics_of, monitor_options

__all__ = ["NeuroMFACallback"]

log = logging.getLogger("neuromfa_native.integrations.monitor")


def _find_trainer() -> Optional[Trainer]:
    f = inspect.currentframe()
    try:
        while f is not None:
            obj = f.f_locals.get("self")
            if isinstance(obj, Trainer):
                return obj
            f = f.f_back
        return None
    finally:
        del f


class NeuroMFACallback(TrainerCallback):
    """Analyse the model every ``every`` optimizer steps (see the module docstring).

    ``samples``, ``per_layer``, ``out``, ``background``, ``strict`` and ``**options`` (``config=``, analysis
    and aggregation options, ``peft``, ``n_threads``) are those of
    :class:`~neuromfa_native.integrations.monitor.Monitor`.  :attr:`monitor` is the monitor of the last
    training run.
    """

    def __init__(self, every: int, samples: Union[int, Sequence[int]] = DEFAULT, per_layer: int = DEFAULT,
                 out: Union[str, os.PathLike, None] = None, *, background: bool = True, strict: bool = False,
                 **options: Any):
        self.every = check_every(every)
        self._kw = monitor_options(out, samples, per_layer, background, strict, options)
        self._feed: Optional[Feed] = None
        self.trainer: Optional[Trainer] = None
        self._warned = False

    @property
    def monitor(self):
        return None if self._feed is None else self._feed.monitor

    def _flush(self, state: Any) -> None:
        if self._feed is None:
            return
        for res in self._feed.pop():
            m = metrics_of(res)
            if self.trainer is not None:
                self.trainer.log(dict(m))
            else:
                if not self._warned:
                    self._warned = True
                    log.warning("neuromfa callback: the Trainer was not found; metrics go to state.log_history only")
                state.log_history.append({**m, "step": state.global_step})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self.trainer = self.trainer or _find_trainer()
        self._feed = Feed(model, self._kw)
        self._feed.monitor.step(state.global_step)
        self._flush(state)

    def on_step_end(self, args, state, control, **kwargs):
        if self._feed is None:
            return
        if state.global_step % self.every == 0:
            self._feed.monitor.step(state.global_step)
        self._flush(state)

    def on_train_end(self, args, state, control, **kwargs):
        if self._feed is None:
            return
        mon = self._feed.monitor
        try:
            mon.step(state.global_step)
            mon.wait()
        finally:
            mon.close()
            self._flush(state)
