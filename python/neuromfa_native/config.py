"""One configuration object: every analysis option, its default and its check, in one place.

:class:`AnalysisConfig` is what :func:`~neuromfa_native.analyze_sample`,
:func:`~neuromfa_native.analyze`, :func:`~neuromfa_native.analyze_series`, the run store and
the ``neuromfa`` command share.  The public functions still take the options as keyword
arguments; they build one ``AnalysisConfig`` from them (or take ``config=``).

Two groups of options:

- :data:`RESULT_FIELDS` change the numbers of a (checkpoint, sample) result.  They are what
  :meth:`AnalysisConfig.result_json` returns: the run store keeps them in ``run.json`` and
  refuses to mix results of different ones.
- :data:`AGGREGATION_FIELDS` (samples, filter, bootstrap) change only how results are
  aggregated; a run directory can be re-aggregated with other values.

Options that change neither (threads, executor, output directory) are not part of it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, TypeVar, Union

from . import _validation as v
from .mfa.boxes import BOX_TYPES, BOXES, DIRECTIONS

_C = TypeVar("_C", "AnalysisConfig", "CorrelationConfig")

__all__ = ["AGGREGATION_FIELDS", "AnalysisConfig", "CONTROLS", "CorrelationConfig", "DEFAULT", "RESULT_FIELDS", "SPECTRUM_FILTERS"]


class _Default:
    """The default of a keyword option of a public function: "take it from the configuration"."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<AnalysisConfig default>"

    def __reduce__(self):
        return (_Default, ())


#: Keyword default of the public functions' analysis options: the value comes from ``config=``
#: (or, without it, from :class:`AnalysisConfig`'s defaults).
DEFAULT: Any = _Default()

#: Published optional spectrum filters (docs/spec.md section 3); see ``Spectrum.passes``.
SPECTRUM_FILTERS = ("none", "f_positive", "alpha_range", "both")

#: The options that change the numbers of a result (the run store's ``config``).
RESULT_FIELDS = ("per_layer", "layout", "box", "direction", "threshold", "min_edges", "decimals", "q",
                 "node_dimension", "nfd_threshold")

#: Null-network controls (docs/controls.md, SPEC 9); ``scaled`` only in a series.
CONTROLS = ("gaussian", "shuffle", "scaled")

#: Result options that add outputs (controls, rival statistics, breakdown by layer): in
#: :meth:`AnalysisConfig.result_json` only when asked for, so a plain run keeps its hash.
EXTRA_RESULT_FIELDS = ("controls", "stats", "by_layer")

#: The options that change only the aggregation over samples and checkpoints.
AGGREGATION_FIELDS = ("samples", "filter", "n_bootstrap", "ci", "seed")


def _layout(layout: Any) -> Union[str, tuple]:
    """A layout name, or a custom layer map as a tuple of string tuples."""
    if isinstance(layout, str):
        return layout
    try:
        entries = list(layout)
    except TypeError:
        raise TypeError(f"layout must be a name or a custom layer map, got {type(layout).__name__}") from None
    out = []
    for k, entry in enumerate(entries):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) not in (3, 4):
            raise ValueError(f"layout[{k}] must be (tensor name, input layer, output layer[, orientation]), "
                             f"got {entry!r}")
        out.append(tuple(str(x) for x in entry))
    return tuple(out)


@dataclass(frozen=True)
class AnalysisConfig:
    """The options of an analysis, validated once.

    Parameters
    ----------
    per_layer : int or None
        neurons sampled per node layer ``S`` (MLP hidden layers get ``2S``); ``None`` analyses
        the full network, streamed (one-hop boxes only).
    layout : str or sequence
        ``"reference"``, ``"heads"``, ``"default"`` or a custom layer map
        ``[(tensor, input layer, output layer[, "conv1d"]), ...]`` (stored as tuples of str).
    box : str
        a box type of :data:`~neuromfa_native.mfa.boxes.BOX_TYPES` (``"edge"``: one-hop boxes, the
        reference; ``"path"``: shortest-path boxes).
    direction : str
        ``"forward"`` or ``"undirected"`` (path boxes).
    threshold : float
        largest distance ``1/|w|`` kept (> 1).
    min_edges : int
        distances a node needs to be a box centre.
    decimals : int
        rounding of distances, in [-15, 15].
    q : sequence of float or None
        moments, strictly increasing; ``None`` is -3.0, -2.9, ..., 3.0.  Stored as a tuple.
    node_dimension : bool
        also compute node fractal dimensions (docs/spec.md section 5).
    nfd_threshold : float
        distance threshold of the node fractal dimensions.
    samples : int or sequence of int
        K (samples 0..K-1) or explicit distinct sample indices.  Stored as the tuple of indices.
    filter : str
        published spectrum filter of the aggregate (docs/spec.md section 3).
    n_bootstrap, ci, seed :
        the bootstrap interval of the degree of emergence (series only).
    controls : sequence of str or str
        null-network controls of :data:`CONTROLS` (``"gaussian,shuffle"`` also works), stored in
        canonical order; ``"scaled"`` only in a series (docs/controls.md).
    stats : bool
        rival weight statistics (rms, kurtosis, Weibull fit, ...) of the rows read.
    by_layer : bool
        spectra of node-layer kinds, blocks and node layers (SPEC 11).

    Raises
    ------
    ValueError, TypeError
        naming the option and the bad value.

    Examples
    --------
    >>> from neuromfa_native import AnalysisConfig
    >>> cfg = AnalysisConfig(per_layer=16, samples=3)
    >>> cfg.samples, cfg.threshold
    ((0, 1, 2), 150.0)
    >>> AnalysisConfig.from_json(cfg.to_json()) == cfg
    True
    """

    per_layer: Optional[int] = 32
    layout: Any = "reference"
    box: str = "edge"
    direction: str = "forward"
    threshold: float = 150.0
    min_edges: int = 11
    decimals: int = 0
    q: Optional[Sequence[float]] = None
    node_dimension: bool = True
    nfd_threshold: float = 200.0
    samples: Any = 10
    filter: str = "none"
    n_bootstrap: int = 1000
    ci: float = 0.95
    seed: int = 0
    controls: Any = ()
    stats: bool = False
    by_layer: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "per_layer", v.positive_int_or_none(self.per_layer, "per_layer", "the full network"))
        set_(self, "layout", _layout(self.layout))
        set_(self, "box", v.one_of(self.box, "box", BOXES))
        set_(self, "direction", v.one_of(self.direction, "direction", DIRECTIONS))
        threshold, min_edges, decimals = v.box_params(self.threshold, self.min_edges, self.decimals)
        set_(self, "threshold", threshold)
        set_(self, "min_edges", min_edges)
        set_(self, "decimals", decimals)
        set_(self, "q", tuple(float(x) for x in v.moments(self.q)))
        set_(self, "node_dimension", bool(self.node_dimension))
        set_(self, "nfd_threshold", v.positive_number(self.nfd_threshold, "nfd_threshold"))
        set_(self, "samples", v.samples(self.samples))
        set_(self, "filter", v.one_of(self.filter, "filter", SPECTRUM_FILTERS))
        set_(self, "n_bootstrap", v.positive_int(self.n_bootstrap, "n_bootstrap", v.MAX_BOOTSTRAP))
        set_(self, "ci", v.confidence_level(self.ci))
        set_(self, "seed", v.integer(self.seed, "seed"))
        set_(self, "controls", v.names(self.controls, "controls", CONTROLS))
        set_(self, "stats", bool(self.stats))
        set_(self, "by_layer", bool(self.by_layer))
        if self.per_layer is None and not BOX_TYPES[self.box].full_network:
            raise ValueError(f"{self.box} boxes need a sampled network (per_layer=S); the full network supports "
                             f"box={[b.name for b in BOX_TYPES.values() if b.full_network]}")

    # -- views ------------------------------------------------------------------------------------
    @property
    def sample_ids(self) -> tuple:
        """The samples a checkpoint runs: ``samples``, or ``(None,)`` for the full network."""
        return (None,) if self.per_layer is None else self.samples

    @property
    def layout_name(self) -> str:
        """The layout's name (``"custom"`` for a layer map)."""
        return self.layout if isinstance(self.layout, str) else "custom"

    def replace(self, **changes: Any) -> AnalysisConfig:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def sample_options(self) -> dict:
        """The keyword arguments of :func:`~neuromfa_native.analyze_sample` it sets."""
        return {k: getattr(self, k) for k in RESULT_FIELDS + EXTRA_RESULT_FIELDS}

    # -- JSON ---------------------------------------------------------------------------------------
    def result_json(self) -> dict:
        """The options that change a result's numbers, as plain JSON values: the ``config`` of a
        run directory's ``run.json`` (its hash keys the stored results)."""
        d = {k: getattr(self, k) for k in RESULT_FIELDS}
        d["layout"] = d["layout"] if isinstance(d["layout"], str) else [list(e) for e in d["layout"]]
        d["q"] = list(d["q"])
        for k in EXTRA_RESULT_FIELDS:  # only when asked for: a plain run keeps its hash
            if getattr(self, k):
                d[k] = list(self.controls) if k == "controls" else True
        return d

    def to_json(self) -> dict:
        """Every option as plain JSON values (:meth:`from_json` reads it back)."""
        return dict(self.result_json(), samples=list(self.samples), filter=self.filter,
                    n_bootstrap=self.n_bootstrap, ci=self.ci, seed=self.seed)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], **overrides: Any) -> AnalysisConfig:
        """The configuration of :meth:`to_json` (or of :meth:`result_json`: the options it lacks
        take their defaults); ``overrides`` replace single options."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown analysis options {unknown}; known: {sorted(names)}")
        return cls(**{**dict(data), **overrides})

    @classmethod
    def from_options(cls, config: Optional[AnalysisConfig] = None, **options: Any) -> AnalysisConfig:
        """``config`` (default: all defaults) with the ``options`` given changed; an option left
        at :data:`DEFAULT` keeps the configuration's value."""
        return _with_options(cls, config, options)

def defaults() -> dict:
    """``{option: default}`` of :class:`AnalysisConfig` (as declared, before validation)."""
    return {f.name: f.default for f in dataclasses.fields(AnalysisConfig)}


# ---------------------------------------------------------------------------------------------
# correlation with benchmark scores (docs/correlation.md, docs/spec.md section 8)


def _names(value: Any, name: str) -> Optional[tuple]:
    """``None``, or names from a comma-separated string or a sequence of strings, as a tuple."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    try:
        out = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be a comma-separated string or a sequence of names, got {value!r}") from None
    if not all(isinstance(x, str) for x in out):
        raise TypeError(f"{name} must be names (str), got {value!r}")
    out = tuple(x.strip() for x in out if x.strip())
    if not out:
        raise ValueError(f"{name} names nothing: {value!r}")
    return out


@dataclass(frozen=True)
class CorrelationConfig:
    """The options of :func:`~neuromfa_native.correlate` and ``neuromfa correlate``, validated once.

    Parameters
    ----------
    tasks : str, sequence of str or None
        tasks to correlate (comma-separated or a sequence); ``None``: every task with the metric.
    metric : str, sequence of str or None
        metric name(s); ``None``: every metric.
    quantities : str, sequence of str or None
        run quantities (``E``, ``alpha0``, ...); ``None``: every one the run holds.
    n_boot : int
        bootstrap replicates of the interval of rho (0: no interval).
    seed : int
        bootstrap seed.
    covariate : str or None
        a quantity name or ``"step"``: also give the partial rho given it.
    ci : float
        level of the bootstrap interval.

    Names are stored as tuples; whether they exist is checked against the run and the scores.

    Examples
    --------
    >>> from neuromfa_native.config import CorrelationConfig
    >>> CorrelationConfig(metric="acc,loss").metric
    ('acc', 'loss')
    """

    tasks: Any = None
    metric: Any = "acc"
    quantities: Any = None
    n_boot: int = 2000
    seed: int = 0
    covariate: Optional[str] = None
    ci: float = 0.95

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("tasks", "metric", "quantities"):
            set_(self, name, _names(getattr(self, name), name))
        set_(self, "n_boot", v.non_negative_int(self.n_boot, "n_boot", "no interval", v.MAX_BOOTSTRAP))
        set_(self, "seed", v.integer(self.seed, "seed"))
        if self.covariate is not None and (not isinstance(self.covariate, str) or not self.covariate):
            raise ValueError(f"covariate must be a quantity name or 'step', got {self.covariate!r}")
        set_(self, "ci", v.confidence_level(self.ci))

    def replace(self, **changes: Any) -> CorrelationConfig:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_options(cls, config: Optional[CorrelationConfig] = None, **options: Any) -> CorrelationConfig:
        """``config`` (default: all defaults) with the ``options`` given changed; an option left
        at :data:`DEFAULT` keeps the configuration's value."""
        return _with_options(cls, config, options)


def _with_options(cls: type[_C], config: Optional[_C], options: Mapping[str, Any]) -> _C:
    """``config`` (``None``: the defaults of ``cls``) with the options not left at :data:`DEFAULT`
    changed; the ``from_options`` of both configuration classes."""
    if config is not None and not isinstance(config, cls):
        raise TypeError(f"config must be {'an' if cls.__name__[0] in 'AEIOU' else 'a'} {cls.__name__}, "
                        f"got {type(config).__name__}")
    given = {k: x for k, x in options.items() if x is not DEFAULT}
    if config is None:
        return cls(**given)
    return config.replace(**given) if given else config


def correlation_defaults() -> dict:
    """``{option: default}`` of :class:`CorrelationConfig` (as declared)."""
    return {f.name: f.default for f in dataclasses.fields(CorrelationConfig)}
