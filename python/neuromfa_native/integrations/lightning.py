"""``NeuroMFACallback`` for Lightning (``lightning`` or ``pytorch_lightning``).

::

    from neuromfa_native.integrations.lightning import NeuroMFACallback
    trainer = lightning.Trainer(..., callbacks=[NeuroMFACallback(every=500, out="run-nmfa")])
    trainer.fit(module)      # returns when every analysis is finished and written

Same options and schedule as the Hugging Face callback: the LightningModule is analysed before
the first step, every ``every`` optimizer steps (``trainer.global_step``) and at the end of
training.  Each result goes to every ``trainer.loggers`` entry with
``log_metrics(metrics, step=<the analysed step>)``: the metrics are ``neuromfa/alpha0``,
``neuromfa/width``, ``neuromfa/E``, ``neuromfa/E_lo``, ``neuromfa/E_hi``.  Only global rank 0
analyses; the other ranks do nothing.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:  # one name for the type checker; either package at run time
    from lightning.pytorch.callbacks import Callback
else:
    try:
        from lightning.pytorch.callbacks import Callback
    except ImportError:  # the older package name
        from pytorch_lightning.callbacks import Callback

from ..config import DEFAULT
from ._common import Feed, check_every, metrics_of, monitor_options

__all__ = ["NeuroMFACallback"]


def _pick_model(pl_module: Any, attr: Optional[str]) -> Any:
    """The module to analyse: ``pl_module.<attr>``; else the LightningModule itself when it has a
    ``config``; else its only child that has one (a wrapped Hugging Face model); else itself."""
    if attr is not None:
        if not hasattr(pl_module, attr):
            raise ValueError(f"attr={attr!r}: the LightningModule has no attribute {attr!r}")
        return getattr(pl_module, attr)
    if getattr(pl_module, "config", None) is not None:
        return pl_module
    found = [m for m in pl_module.children() if getattr(m, "config", None) is not None]
    return found[0] if len(found) == 1 else pl_module


class NeuroMFACallback(Callback):
    """Analyse the LightningModule every ``every`` optimizer steps (see the module docstring).

    ``samples``, ``per_layer``, ``out``, ``background``, ``strict`` and ``**options`` are those
    of :class:`~neuromfa_native.integrations.monitor.Monitor`; ``attr`` names the LightningModule's
    attribute holding the model to analyse (default: the module itself if it has a ``config``,
    else its only child with one, e.g. a wrapped ``transformers`` model).  :attr:`history` lists the logged metrics
    (with ``neuromfa/step``)."""

    def __init__(self, every: int, samples: Union[int, Sequence[int]] = DEFAULT, per_layer: int = DEFAULT,
                 out: Union[str, os.PathLike, None] = None, *, background: bool = True, strict: bool = False,
                 attr: Optional[str] = None, **options: Any):
        self.every = check_every(every)
        self.attr = attr
        self._kw = monitor_options(out, samples, per_layer, background, strict, options)
        self._feed: Optional[Feed] = None
        self.history: list = []

    @property
    def monitor(self):
        return None if self._feed is None else self._feed.monitor

    def _flush(self, trainer: Any) -> None:
        if self._feed is None:
            return
        for res in self._feed.pop():
            m = metrics_of(res)
            self.history.append(m)
            for lg in trainer.loggers:
                lg.log_metrics(res.metrics(), step=res.step)

    def on_train_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        self._feed = Feed(_pick_model(pl_module, self.attr), self._kw)
        self._feed.monitor.step(trainer.global_step)
        self._flush(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._feed is None:
            return
        if trainer.global_step % self.every == 0:
            self._feed.monitor.step(trainer.global_step)  # a step asked for twice is analysed once
        self._flush(trainer)

    def on_train_end(self, trainer, pl_module):
        if self._feed is None:
            return
        mon = self._feed.monitor
        try:
            mon.step(trainer.global_step)
            mon.wait()
        finally:
            mon.close()
            self._flush(trainer)
