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
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar, Union

from . import _validation as v
from .mfa.boxes import BOX_TYPES, BOXES, DIRECTIONS
from .science.nulls import CONTROLS

_C = TypeVar("_C", "AnalysisConfig", "CorrelationConfig")

__all__ = ["AGGREGATION_FIELDS", "AnalysisConfig", "CONTROLS", "CorrelationConfig", "DEFAULT", "DEFAULT_CONFIG", "Flag",
           "RESULT_FIELDS", "SPECTRUM_FILTERS", "command_line", "flags"]


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

#: Result options that add outputs (controls, rival statistics, breakdown by layer): in
#: :meth:`AnalysisConfig.result_json` only when asked for, so a plain run keeps its hash.
EXTRA_RESULT_FIELDS = ("controls", "stats", "by_layer")

#: The options that change only the aggregation over samples and checkpoints.
AGGREGATION_FIELDS = ("samples", "filter", "n_bootstrap", "ci", "seed")


# ---------------------------------------------------------------------------------------------
# the command line of an option: its flag, how its text is read and written


@dataclass(frozen=True)
class Flag:
    """How an option of a configuration is written on the command line (the field's
    ``metadata["flag"]``): the ``neuromfa`` parsers, the "reproduce this run" command and the
    sensitivity grid's choices are built from it.

    Attributes
    ----------
    name : the flag, e.g. ``"--per-layer"``.  A boolean option is a switch: ``--stats`` turns a
        ``False`` default on, ``--no-node-dimension`` turns a ``True`` default off.
    help : its help line (the default is added where it says something).
    metavar : the placeholder of its value in the help.
    parse : text -> value; raises ``ValueError`` naming the flag.
    show : value -> text, the inverse of ``parse`` (``None``: the value has no command-line
        form, e.g. a custom layer map).
    choices : the values it takes, when they are a closed set.
    vary : a method choice that ``neuromfa sensitivity --vary`` can vary.
    """

    name: str
    help: str
    metavar: Optional[str] = None
    parse: Callable[[str], Any] = str
    show: Callable[[Any], Optional[str]] = str
    choices: Optional[Sequence[str]] = None
    vary: bool = False

    def __repr__(self) -> str:
        return f"<Flag {self.name}>"

    def read(self, text: str) -> Any:
        """``text`` parsed, and checked against :attr:`choices` (a ``ValueError`` naming the flag)."""
        value = self.parse(text)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, got {text!r}")
        return value


def _option(default: Any, flag: Optional[str] = None, help: str = "", **kw: Any) -> Any:
    """A configuration field: its default and, for a command-line option, its :class:`Flag`."""
    return dataclasses.field(default=default, metadata={"flag": Flag(name=flag, help=help, **kw)} if flag else {})


def _int_text(flag: str, minimum: Optional[int] = None, maximum: Optional[int] = v.MAX_COUNT) -> Callable[[str], int]:
    """The parser of an integer flag in ``[minimum, maximum]`` (the configuration's own bounds)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{flag} must be an integer, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"{flag} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ValueError(f"{flag} must be at most {maximum}, got {text[:40]}")
        return value
    return parse


def _float_text(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{flag} must be a number, got {text!r}") from None
    return parse


def _float_show(x: float) -> str:
    """``150`` for 150.0, the exact repr where ``%g`` would round."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


#: The words ``--per-layer`` takes for the full network.
FULL_NETWORK = ("full", "none", "all")


def _per_layer_text(text: str) -> Optional[int]:
    return None if text.lower() in FULL_NETWORK else _int_text("--per-layer", 1)(text)


def _per_layer_show(per_layer: Optional[int]) -> str:
    return FULL_NETWORK[0] if per_layer is None else str(per_layer)


def _samples_show(samples: Any) -> Optional[str]:
    """``K`` for samples 0..K-1; ``None`` (Python only) for other sample indices."""
    if isinstance(samples, int):
        return str(samples)
    return str(len(samples)) if tuple(samples) == tuple(range(len(samples))) else None


def _name_show(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _names_show(names: Any) -> Optional[str]:
    return None if names is None else ",".join(names)


def _config_repr(config: Any) -> str:
    """``Class(option=value, ...)`` of the options that differ from the defaults (a long
    sequence is abbreviated)."""
    base = type(config)()
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value != getattr(base, f.name):
            text = repr(value)
            if isinstance(value, tuple) and len(value) > 8:
                text = f"({value[0]!r}, {value[1]!r}, ..., {value[-1]!r})"
            parts.append(f"{f.name}={text}")
    return f"{type(config).__name__}({', '.join(parts)})"


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

    Every option that is a command-line flag carries its :class:`Flag` in its field's metadata
    (:func:`flags`): the ``neuromfa`` parsers, :func:`command_line` and the sensitivity grid are
    built from it.

    Parameters
    ----------
    per_layer : int or None
        neurons sampled per node layer ``S`` (MLP hidden layers get ``2S``); ``None`` analyses
        the full network, streamed (one-hop boxes only).
    layout : str or sequence
        ``"reference"``, ``"heads"``, ``"default"``, ``"per_expert"`` or a custom layer map
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
        null-network controls, names of :data:`~neuromfa_native.science.nulls.CONTROLS`
        (``"gaussian,shuffle"`` also works), stored in the table's order; a control that needs the
        baseline (``"scaled"``) only in a series (docs/controls.md).
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

    per_layer: Optional[int] = _option(
        32, "--per-layer", "neurons sampled per layer; 'full' for the whole network (one-hop boxes)", metavar="S",
        parse=_per_layer_text, show=_per_layer_show, vary=True)
    layout: Any = _option("reference", "--layout",
                          "layer map: reference, heads, default, or per_expert (mixture-of-experts models)",
                          show=_name_show, vary=True)
    box: str = _option("edge", "--box", "one-hop boxes (reference) or shortest-path boxes", choices=BOXES, vary=True)
    direction: str = _option("forward", "--direction", "path direction for --box path", choices=DIRECTIONS,
                             vary=True)
    threshold: float = _option(150.0, "--threshold", "largest distance 1/|w| kept", metavar="T",
                               parse=_float_text("--threshold"), show=_float_show, vary=True)
    min_edges: int = _option(11, "--min-edges", "distances a node needs to be a box centre", metavar="N",
                             parse=_int_text("--min-edges", 1), vary=True)
    decimals: int = _option(0, "--decimals", "rounding of distances", metavar="D", parse=_int_text("--decimals"),
                            vary=True)
    q: Optional[Sequence[float]] = None  # a list of moments: from Python only
    node_dimension: bool = _option(True, "--no-node-dimension", "skip node fractal dimensions")
    nfd_threshold: float = _option(200.0, "--nfd-threshold", "distance threshold of node fractal dimensions",
                                   metavar="T", parse=_float_text("--nfd-threshold"), show=_float_show, vary=True)
    samples: Any = _option(10, "--samples", "sampled networks per checkpoint (samples 0..K-1)", metavar="K",
                           parse=_int_text("--samples", 1, v.MAX_SAMPLES), show=_samples_show, vary=True)
    filter: str = _option("none", "--filter", "published spectrum filter applied to the statistics",
                          choices=SPECTRUM_FILTERS, vary=True)
    n_bootstrap: int = _option(1000, "--bootstrap", "bootstrap replicates of the E interval", metavar="N",
                               parse=_int_text("--bootstrap", 1, v.MAX_BOOTSTRAP))
    ci: float = _option(0.95, "--ci", "confidence level of the E interval", parse=_float_text("--ci"),
                        show=_float_show)
    seed: int = _option(0, "--seed", "bootstrap seed", parse=_int_text("--seed", 0, maximum=None))
    controls: Any = _option((), "--controls", "null-network controls: any of " + ",".join(CONTROLS)
                            + " (writes controls.csv)", metavar="C1,C2", show=_names_show)
    stats: bool = _option(False, "--stats", "rival weight statistics (rms, kurtosis, Weibull fit, ...; writes "
                                            "stats.csv)")
    by_layer: bool = _option(False, "--by-layer", "spectra of node-layer kinds, blocks and node layers (writes "
                                                  "by_layer.csv)")

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
        set_(self, "seed", v.seed(self.seed))
        set_(self, "controls", v.names(self.controls, "controls", tuple(CONTROLS)))
        set_(self, "stats", bool(self.stats))
        set_(self, "by_layer", bool(self.by_layer))
        if self.per_layer is None and not BOX_TYPES[self.box].full_network:
            raise ValueError(f"{self.box} boxes need a sampled network (per_layer=S); the full network supports "
                             f"box={[b.name for b in BOX_TYPES.values() if b.full_network]}")

    def __repr__(self) -> str:
        return _config_repr(self)

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


#: :class:`AnalysisConfig` with every option at its default: where code outside this module
#: needs a default (a keyword's default, a missing value of a stored run), it reads it here.
DEFAULT_CONFIG = AnalysisConfig()


def defaults() -> dict:
    """``{option: default}`` of :class:`AnalysisConfig` (as declared, before validation)."""
    return {f.name: f.default for f in dataclasses.fields(AnalysisConfig)}


def flags(cls: type = AnalysisConfig) -> dict:
    """``{option: Flag}`` of the options of a configuration class that are command-line flags,
    in field order (``q`` is not one: a list of moments is given from Python)."""
    return {f.name: f.metadata["flag"] for f in dataclasses.fields(cls) if "flag" in f.metadata}


def command_line(config: Any) -> tuple:
    """``(arguments, notes)``: the flags that give ``config`` on the command line (one for every
    option that differs from its default, written by its :attr:`Flag.show`), and a note for
    every option that differs but has no command-line form (``q``, a custom layer map,
    samples other than 0..K-1).

    Examples
    --------
    >>> from neuromfa_native.config import AnalysisConfig, command_line
    >>> command_line(AnalysisConfig(per_layer=None, threshold=100.0, stats=True))
    (['--per-layer', 'full', '--threshold', '100', '--stats'], [])
    >>> command_line(AnalysisConfig(samples=[0, 3]))[1]
    ['samples 0,3: only from Python']
    """
    base = type(config)()
    fl = flags(type(config))
    args: list = []
    notes: list = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value == getattr(base, f.name):
            continue
        flag = fl.get(f.name)
        text = None if flag is None or isinstance(value, bool) else flag.show(value)
        if flag is not None and isinstance(value, bool):
            args.append(flag.name)
        elif text is not None:
            args += [flag.name, text]  # type: ignore[union-attr]  # text is None without a flag
        else:
            plain = isinstance(value, tuple) and len(value) <= 12 and all(isinstance(x, (int, float, str)) for x in value)
            notes.append(f"{f.name}{' ' + ','.join(map(str, value)) if plain else ''}: only from Python")
    return args, notes


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

    tasks: Any = _option(None, "--tasks", "tasks to use (default: every task with the metric)", metavar="A,B,...",
                         show=_names_show)
    metric: Any = _option("acc", "--metric", "metric(s); 'all' for every metric", metavar="M[,M2]", show=_names_show)
    quantities: Any = _option(None, "--quantities", "quantities (default: all the run holds)", metavar="Q1,Q2",
                              show=_names_show)
    n_boot: int = _option(2000, "--bootstrap", "bootstrap replicates (0: none)", metavar="N",
                          parse=_int_text("--bootstrap", 0, v.MAX_BOOTSTRAP))
    seed: int = _option(0, "--seed", "bootstrap seed", parse=_int_text("--seed", 0, maximum=None))
    covariate: Optional[str] = _option(None, "--covariate", "partial rho given this quantity, or 'step'",
                                       metavar="NAME")
    ci: float = 0.95

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("tasks", "metric", "quantities"):
            set_(self, name, _names(getattr(self, name), name))
        set_(self, "n_boot", v.non_negative_int(self.n_boot, "n_boot", "no interval", v.MAX_BOOTSTRAP))
        set_(self, "seed", v.seed(self.seed))
        if self.covariate is not None and (not isinstance(self.covariate, str) or not self.covariate):
            raise ValueError(f"covariate must be a quantity name or 'step', got {self.covariate!r}")
        set_(self, "ci", v.confidence_level(self.ci))

    def __repr__(self) -> str:
        return _config_repr(self)

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
