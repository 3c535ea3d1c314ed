"""Benchmark scores of checkpoints: ``read_evals`` and the tidy :class:`EvalTable` (docs/spec.md section 8).

An eval record is ``(step, task, metric, value, stderr, higher_is_better)``; ``stderr`` is NaN
where the source has none.  Sources:

- lm-evaluation-harness result JSON files (a directory, searched recursively, or a list of
  files), both layouts: v0.3 ``results[task] = {"acc": .., "acc_stderr": ..}`` and 0.4+
  ``results[task] = {"acc,none": .., "acc_stderr,none": ..}``.  The step comes from
  ``config.model_args`` (``revision=stepN``), else from the file name (``stepN``); a file
  whose name and content disagree follows the content (noted in :attr:`EvalTable.notes`);
- a CSV (optionally gzipped) or Parquet file with columns ``step, task, metric, value`` and
  optionally ``stderr``, ``higher_is_better``;
- ``"pythia:MODEL"`` (zero-shot) or ``"pythia:MODEL:5shot"``: EleutherAI's evaluations of the
  Pythia v1 checkpoints, shipped inside this package (Apache-2.0, ``data/LICENSE-pythia``);
- a mapping ``{step: {task: value}}`` (metric ``metric``), ``{step: {task: {metric: value}}}``
  or ``{step: {task: {metric: (value, stderr)}}}``;
- a pandas DataFrame with the CSV's columns, or an :class:`EvalTable`.

Everything is validated before a table is returned: a bad file raises ``ValueError`` naming it,
and nothing is half read.
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from numbers import Real
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from .. import _validation as check
from .._fs import parse_json, read_json
from .._results import fields_equal, readonly
from .._text import short
from ..run.checkpoints import step_value

__all__ = ["EvalTable", "read_evals", "pythia_models", "LOWER_IS_BETTER"]

#: Metrics where a smaller value is better (docs/spec.md section 8); matched on the name before any ``,filter``.
LOWER_IS_BETTER = frozenset({"ppl", "perplexity", "loss", "bits_per_byte", "word_perplexity",
                             "byte_perplexity"})

PYTHIA_DATA = "pythia-v1-evals.csv.gz"
COLUMNS = ("step", "task", "metric", "value", "stderr", "higher_is_better", "source")

_REVISION_RE = re.compile(r"(?:^|,)\s*revision\s*=\s*step(\d+)\s*(?:,|$)")
_NAME_STEP_RE = re.compile(r"(?:^|[^a-z0-9])step[_-]?(\d+(?:\.\d+)?)([a-z]*)(?![0-9a-z])", re.IGNORECASE)


def higher_is_better(metric: str) -> bool:
    """False for the lower-is-better metrics of docs/spec.md section 8 (``loss``, ``ppl``, ...; any ``,filter``)."""
    return metric.split(",", 1)[0] not in LOWER_IS_BETTER


@dataclass(frozen=True, eq=False)
class EvalTable:
    """Tidy benchmark scores, one record per ``(step, task, metric)``, sorted by them.

    Columns are read-only numpy arrays: ``step`` (int64), ``task``, ``metric``, ``source``
    (str objects), ``value``, ``stderr`` (float64; NaN = unknown), ``higher_is_better`` (bool).
    ``notes`` lists what the reader decided on the caller's behalf (a file whose name and content
    disagree on the step, identical duplicate records merged).  ``model`` is the model the scores
    belong to when the source names it (``pythia:160m``: ``EleutherAI/pythia-160m``; lm-eval's
    ``config.model_args`` ``pretrained=...``; a table's ``model`` column), else ``""``.
    """

    step: np.ndarray
    task: np.ndarray
    metric: np.ndarray
    value: np.ndarray
    stderr: np.ndarray
    higher_is_better: np.ndarray
    source: np.ndarray
    name: str = ""
    notes: tuple = ()
    model: str = ""

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        for c in COLUMNS:
            object.__setattr__(self, c, readonly(getattr(self, c)))
        object.__setattr__(self, "notes", tuple(self.notes))

    def __len__(self) -> int:
        return int(self.step.size)

    @property
    def steps(self) -> np.ndarray:
        """The distinct steps, ascending."""
        return np.unique(self.step)

    @property
    def tasks(self) -> tuple:
        """The distinct tasks, sorted."""
        return tuple(sorted(set(self.task.tolist())))

    def metrics(self, task: Optional[str] = None) -> tuple:
        """The distinct metrics (of one task, or of all)."""
        m = self.metric if task is None else self.metric[self.task == task]
        return tuple(sorted(set(m.tolist())))

    def rows(self) -> list:
        """One plain dict per record."""
        return [dict(step=int(s), task=t, metric=m, value=float(v), stderr=float(e),
                     higher_is_better=bool(h), source=src)
                for s, t, m, v, e, h, src in zip(self.step, self.task, self.metric, self.value,
                                                  self.stderr, self.higher_is_better, self.source)]

    def to_pandas(self):
        """The table as a pandas DataFrame (needs pandas)."""
        import pandas as pd
        return pd.DataFrame({c: getattr(self, c) for c in COLUMNS})

    def select(self, task: str, metric: str) -> tuple:
        """``(step, value, stderr)`` arrays of one (task, metric), ascending steps."""
        m = (self.task == task) & (self.metric == metric)
        return self.step[m], self.value[m], self.stderr[m]

    def duplicated_steps(self) -> dict:
        """``{step: earlier_step}`` for steps whose every record equals an earlier step's
        (the same tasks and metrics with the same values), e.g. Pythia's step 1 = step 0."""
        by_step: dict = {}
        for s, t, m, v in zip(self.step.tolist(), self.task.tolist(), self.metric.tolist(), self.value.tolist()):
            by_step.setdefault(s, []).append((t, m, v))
        seen: dict = {}
        out = {}
        for s in sorted(by_step):
            key = tuple(sorted(by_step[s]))
            if key in seen:
                out[s] = seen[key]
            else:
                seen[key] = s
        return out

    def __repr__(self) -> str:
        steps = self.steps
        span = f"steps {steps[0]}..{steps[-1]}" if steps.size else "no steps"
        name = f" {self.name!r}" if self.name else ""
        return (f"EvalTable{name}: {len(self)} records, {steps.size} {span}, {len(self.tasks)} tasks, "
                f"metrics {', '.join(self.metrics())}")


# ---------------------------------------------------------------------------------------------
# building a table from records


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (Real, np.number)):
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                pass
        raise ValueError(f"{what} is not a number: {short(v)}")
    try:
        return float(v)
    except OverflowError:  # a JSON integer beyond any float
        raise ValueError(f"{what} is not a finite number: {short(v)}") from None


def _stderr(v: Any, what: str) -> float:
    if v is None or (isinstance(v, str) and v.strip().upper() in ("", "N/A", "NA", "NAN")):
        return math.nan
    x = _number(v, what)
    if x < 0:
        raise ValueError(f"{what} is negative: {short(v)}")
    if math.isinf(x):  # an infinite stderr is no measurement: not zero noise (NaN: missing)
        raise ValueError(f"{what} is not finite: {short(v)} (a stderr is a finite number, or missing)")
    return x


def _table(records: Iterable[tuple], *, name: str = "", notes: Sequence[str] = ()) -> EvalTable:
    """Validate records ``(step, task, metric, value, stderr, hib_or_None, source)`` into a table."""
    merged: dict = {}
    notes = list(notes)
    n_same = 0
    for step, task, metric, value, stderr, hib, src in records:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step <= check.MAX_STEP:
            raise ValueError(f"{src}: step must be an integer in [0, 2**53], got {short(step)}")
        if not isinstance(task, str) or not task:
            raise ValueError(f"{src}: task must be a non-empty string, got {task!r}")
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"{src}: metric of task {task!r} must be a non-empty string, got {metric!r}")
        if not math.isfinite(value):
            raise ValueError(f"{src}: {task} {metric} at step {step} is not finite: {value!r}")
        key = (int(step), task, metric)
        if key in merged:
            old = merged[key]
            same = old[3] == value and (old[4] == stderr or (math.isnan(old[4]) and math.isnan(stderr)))
            if not same:
                raise ValueError(f"step {step} given twice with different values for {task} {metric}: "
                                 f"{old[3]!r} ({old[6]}) and {value!r} ({src})")
            n_same += 1
            continue
        merged[key] = (int(step), task, metric, value, stderr,
                       higher_is_better(metric) if hib is None else bool(hib), src)
    if n_same:
        notes.append(f"{n_same} identical duplicate record(s) merged")
    rows = [merged[k] for k in sorted(merged)]
    cols = list(zip(*rows)) if rows else [()] * 7
    step, task, metric, value, stderr, hib, src = (np.array(x, dtype=dt) for x, dt in zip(cols, (
        np.int64, object, object, float, float, bool, object)))
    return EvalTable(step=step, task=task, metric=metric, value=value, stderr=stderr, higher_is_better=hib,
                     source=src, name=name, notes=tuple(notes))


# ---------------------------------------------------------------------------------------------
# lm-evaluation-harness JSON


def _step_from_model_args(model_args: Any) -> Optional[int]:
    if isinstance(model_args, Mapping):
        rev = model_args.get("revision")
        m = re.fullmatch(r"\s*step(\d+)\s*", rev) if isinstance(rev, str) else None
        return int(m.group(1)) if m else None
    if isinstance(model_args, str):
        m = _REVISION_RE.search(model_args)
        return int(m.group(1)) if m else None
    return None


def _harness_records(path: Path, notes: list) -> list:
    """The records of one lm-evaluation-harness result file (validated; raises ValueError)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{str(path)!r} cannot be read: {exc.strerror or exc}") from None
    doc = parse_json(raw, f"{str(path)!r} is not JSON")
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise ValueError(f"{str(path)!r} is not an lm-evaluation-harness result: no 'results' object")
    raw_config = doc.get("config")
    config: dict = raw_config if isinstance(raw_config, dict) else {}
    from_content = _step_from_model_args(config.get("model_args"))
    m = _NAME_STEP_RE.search(path.stem)
    from_name = step_value(m.group(1), m.group(2)) if m else None  # step1k: 1000; step1x: none
    if from_content is None and from_name is None:
        raise ValueError(f"{str(path)!r}: no step: config.model_args has no revision=stepN and the "
                         f"file name has no stepN")
    if from_content is not None and from_name is not None and from_content != from_name:
        notes.append(f"{path.name}: the name says step {from_name}, config.model_args says step "
                     f"{from_content}; using {from_content}")
    step = from_content if from_content is not None else from_name
    src = str(path)
    out = []
    for task, res in doc["results"].items():
        if not isinstance(res, dict):
            raise ValueError(f"{src}: results[{task!r}] is not an object")
        for key, value in res.items():
            if key == "alias" or key == "samples":
                continue
            metric, _, filt = key.partition(",")
            if metric.endswith("_stderr"):
                continue
            name = metric if filt in ("", "none") else key
            err_key = f"{metric}_stderr" + (f",{filt}" if filt else "")
            v = _number(value, f"{src}: {task} {key}")
            e = _stderr(res.get(err_key), f"{src}: {task} {err_key}")
            out.append((step, task, name, v, e, None, src))
    return out


def _json_files(paths: Sequence[Path]) -> list:
    files = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.json") if q.is_file())
            if not found:
                raise ValueError(f"{str(p)!r} holds no .json result files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ValueError(f"eval source {str(p)!r} does not exist")
    return files


def _pretrained(path: Path) -> str:
    """The model an lm-evaluation-harness result names (``config.model_args`` ``pretrained=``;
    a trailing ``/stepN`` directory dropped: the checkpoint of a model), or ""."""
    try:
        args = read_json(path).get("config", {}).get("model_args")
    except (ValueError, UnicodeDecodeError, AttributeError, OSError):
        return ""
    value = args.get("pretrained") if isinstance(args, Mapping) else None
    if isinstance(args, str):
        m = re.search(r"(?:^|,)\s*pretrained\s*=\s*([^,]+)", args)
        value = m.group(1).strip() if m else None
    if not isinstance(value, str) or not value.strip():
        return ""
    return re.sub(r"/(?:step|checkpoint-|global_step)\d+/?$", "", value.strip().rstrip("/"))


def _read_harness(paths: Sequence[Path], name: str) -> EvalTable:
    notes: list = []
    records = []
    files = _json_files(paths)
    for f in files:
        records.extend(_harness_records(f, notes))
    models = sorted({m for m in map(_pretrained, files) if m})
    if len(models) > 1:
        notes.append(f"the result files name {len(models)} models: {', '.join(models[:6])}")
    return dataclasses.replace(_table(records, name=name, notes=notes), model=", ".join(models))


# ---------------------------------------------------------------------------------------------
# tables: CSV, Parquet, DataFrame


_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}


def _bool(v: Any, what: str) -> Optional[bool]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    s = str(v).strip().lower()
    if s == "":
        return None
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"{what} is not a boolean: {v!r}")


def _step_value(v: Any, what: str) -> int:
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} is not an integer step: {short(v)}") from None
    if not math.isfinite(f) or f != int(f) or not 0 <= f <= check.MAX_STEP:
        raise ValueError(f"{what} is not an integer step in [0, 2**53]: {short(v)}")
    return int(f)


def _column_records(cols: Mapping[str, Sequence], src: str) -> list:
    missing = [c for c in ("step", "task", "metric", "value") if c not in cols]
    if missing:
        raise ValueError(f"{src}: missing column(s) {', '.join(missing)} (need step, task, metric, value; "
                         f"optional stderr, higher_is_better)")
    for c in ("model", "num_fewshot"):
        if c in cols and len({str(x) for x in cols[c]}) > 1:
            raise ValueError(f"{src}: column {c!r} holds several values ({', '.join(sorted({str(x) for x in cols[c]})[:6])}"
                             f"); pass a table of one model and one setting")
    n = len(cols["step"])
    err = cols.get("stderr", [None] * n)
    hib = cols.get("higher_is_better", [None] * n)
    out = []
    for i in range(n):
        where = f"{src}: row {i + 1}"
        out.append((_step_value(cols["step"][i], f"{where} step"), str(cols["task"][i]), str(cols["metric"][i]),
                    _number(cols["value"][i], f"{where} value"), _stderr(err[i], f"{where} stderr"),
                    _bool(hib[i], f"{where} higher_is_better"), src))
    return out


#: The most bytes a compressed eval table may inflate to (the whole shipped Pythia table is 17 MB):
#: a few kB of gzip must not become gigabytes of rows.
MAX_INFLATED = 64 << 20


def _read_csv(path: Path) -> EvalTable:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as gz:
                raw = gz.read(MAX_INFLATED + 1)
            if len(raw) > MAX_INFLATED:
                raise ValueError(f"{str(path)!r} inflates to more than {MAX_INFLATED >> 20} MB: not an eval table")
            text = raw.decode("utf-8")
        else:
            text = path.read_bytes().decode("utf-8")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = reader.fieldnames or []
        rows = list(reader)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{str(path)!r} is not a readable CSV file: {exc}") from None
    cols = {f: [r[f] for r in rows] for f in fields}
    return _with_model(_table(_column_records(cols, str(path)), name=path.name), cols)


def _read_parquet(path: Path) -> EvalTable:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow (pip install pyarrow)") from None
    cols: dict = {}
    size = 0
    try:  # batch by batch, counting what it inflates to (repeated strings compress to nothing)
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 16):
            for k, v in batch.to_pydict().items():
                cols.setdefault(k, []).extend(v)
                size += sum(len(x) if isinstance(x, str) else 8 for x in v)
            if size > MAX_INFLATED:
                raise ValueError(f"it inflates to more than {MAX_INFLATED >> 20} MB: not an eval table")
    except Exception as exc:  # pyarrow raises its own error types
        raise ValueError(f"{str(path)!r} is not a readable Parquet file: {exc}") from None
    return _with_model(_table(_column_records(cols, str(path)), name=path.name), cols)


def _read_frame(df, name: str) -> EvalTable:
    cols = {str(c): df[c].tolist() for c in df.columns}
    return _with_model(_table(_column_records(cols, name or "DataFrame"), name=name), cols)


def _with_model(table: EvalTable, cols: Mapping[str, Sequence]) -> EvalTable:
    """The table with the model its ``model`` column names (one value: checked by the reader)."""
    names = {str(x).strip() for x in cols.get("model", ())} - {"", "nan", "None"}
    return dataclasses.replace(table, model=names.pop()) if len(names) == 1 else table


# ---------------------------------------------------------------------------------------------
# the shipped Pythia tables


def _pythia_bytes() -> bytes:
    from importlib.resources import files
    return (files("neuromfa_native") / "data" / PYTHIA_DATA).read_bytes()


def _source_name(model: str, shots: str) -> str:
    return f"pythia:{model}" + ("" if shots == "0" else f":{shots}shot")


@lru_cache(maxsize=1)
def _pythia_index() -> tuple:
    """The header and ``{source name: data lines}`` of the shipped table (parsed per model, lazily)."""
    lines = gzip.decompress(_pythia_bytes()).decode("utf-8").splitlines()
    index: dict = {}
    for line in lines[1:]:
        model, shots, _ = line.split(",", 2)
        index.setdefault(_source_name(model, shots), []).append(line)
    return lines[0], index


def pythia_models() -> dict:
    """``{name: n_records}`` of every ``pythia:`` source shipped (``"pythia:160m"``, ``"pythia:160m:5shot"``, ...)."""
    return {k: len(v) for k, v in sorted(_pythia_index()[1].items())}


@lru_cache(maxsize=8)
def _read_pythia(name: str) -> EvalTable:
    parts = name.split(":")
    canonical = None
    if len(parts) == 2 or (len(parts) == 3 and re.fullmatch(r"\d+shot", parts[2])):
        canonical = _source_name(parts[1], str(int(parts[2][:-4])) if len(parts) == 3 else "0")
    header, index = _pythia_index()
    if canonical is None or canonical not in index:
        raise ValueError(f"unknown Pythia eval source {name!r}; known: {', '.join(pythia_models())}")
    cols = next(csv.reader([header]))
    i = {c: cols.index(c) for c in cols}
    recs = [(int(r[i["step"]]), r[i["task"]], r[i["metric"]], float(r[i["value"]]),
             math.nan if r[i["stderr"]] == "" else float(r[i["stderr"]]), None, r[i["source_file"]])
            for r in csv.reader(index[canonical])]
    return dataclasses.replace(_table(recs, name=canonical), model=f"EleutherAI/pythia-{canonical.split(':')[1]}")


# ---------------------------------------------------------------------------------------------
# mappings


def _read_mapping(m: Mapping, metric: str) -> EvalTable:
    recs = []
    for step, tasks in m.items():
        if isinstance(step, str):
            mm = re.fullmatch(r"(?:step)?(\d+)", step.strip())
            if not mm:
                raise ValueError(f"mapping key {step!r} is not a step")
            step = int(mm.group(1))
        where = f"mapping[{short(step)}]"
        if not isinstance(tasks, Mapping):
            raise ValueError(f"{where} must map task -> value, got {type(tasks).__name__}")
        for task, v in tasks.items():
            items = v.items() if isinstance(v, Mapping) else [(metric, v)]
            for met, x in items:
                val, err = (x if isinstance(x, (tuple, list)) and len(x) == 2 else (x, None))
                recs.append((step, str(task), str(met), _number(val, f"{where}[{task!r}] {met}"),
                             _stderr(err, f"{where}[{task!r}] {met} stderr"), None, "mapping"))
    return _table(recs, name="mapping")


# ---------------------------------------------------------------------------------------------


def read_evals(source: Any, *, metric: str = "acc") -> EvalTable:
    """Read benchmark scores into an :class:`EvalTable` (see the module docstring for sources).

    ``metric`` names the metric of a plain ``{step: {task: value}}`` mapping.  Raises
    ``ValueError`` naming the file (or key) for anything that cannot be read whole: not JSON, no
    ``results``, a non-numeric value, the same ``(step, task, metric)`` with different values,
    a file without a step, an unknown ``pythia:`` name (the known ones are listed).

    Parameters
    ----------
    source : str, path, sequence of paths, mapping or EvalTable
        lm-evaluation-harness JSON file(s) or a directory, a ``.csv``/``.parquet`` table,
        ``"pythia:MODEL"`` (``"pythia:MODEL:5shot"``), or ``{step: {task: value}}``.

    Returns
    -------
    EvalTable

    Raises
    ------
    ValueError
        a file that is not JSON, a result without ``results``, a non-numeric value, a step given
        twice with different values, an unknown ``pythia:`` name.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> nm.read_evals({0: {"piqa": 0.5}, 1000: {"piqa": 0.6}}).value.tolist()
    [0.5, 0.6]
    """
    if isinstance(source, EvalTable):
        return source
    if isinstance(source, str) and source.startswith("pythia:"):
        return _read_pythia(source)
    if isinstance(source, Mapping):
        return _read_mapping(source, metric)
    if hasattr(source, "columns") and hasattr(source, "to_dict"):  # a pandas DataFrame
        return _read_frame(source, "DataFrame")
    if isinstance(source, (str, os.PathLike)):
        if not os.fspath(source).strip():
            raise ValueError("eval source is an empty name (it would mean the current directory)")
        p = Path(source)
        low = p.name.lower()
        if p.is_file() and low.endswith((".csv", ".csv.gz", ".tsv")):
            return _read_csv(p)
        if p.is_file() and low.endswith((".parquet", ".pq")):
            return _read_parquet(p)
        if not p.exists():
            raise ValueError(f"eval source {str(source)!r} does not exist (a directory or file of "
                             f"lm-evaluation-harness JSON, a .csv/.parquet table, or 'pythia:MODEL')")
        return _read_harness([p], str(source))
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("eval source is an empty list")
        if any(not os.fspath(s).strip() for s in source):
            raise ValueError("eval source lists an empty name (it would mean the current directory)")
        return _read_harness([Path(s) for s in source], "files")
    raise TypeError(f"eval source must be a path, a list of paths, 'pythia:MODEL', a mapping or a "
                    f"DataFrame, got {type(source).__name__}")
