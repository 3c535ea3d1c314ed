"""neuromfa_native: neuron-based multifractal analysis (NeuroMFA) with a C++/OpenMP core."""
from ._core import openmp_enabled
from ._version import __version__
from .science.analysis import Analysis, NodeDimensions, SampleResult, analyze, analyze_sample, node_fractal_dimension
from .mfa.engine import Spectrum, analyze_graph, emergence, spectrum_from_tau
from .network.fingerprint import find_identical, fingerprint
from .network.nin import NIN, build_nin, describe, iter_full_matrices
from .io.sources import resolve_source
from .run.checkpoints import Checkpoint, make_series
from .run.revisions import parse_revision  # hub revision names -> steps and tokens (docs/remote.md)
from .config import AnalysisConfig
from .run.series import Series
from .run.runner import analyze_series
from .run.store import load_run
from .run.verdict import Verdict, checkpoint_contrast, verdict
from .report.tables import write_report
# -- benchmark scores and correlation (docs/correlation.md) --
from .scores.evals import EvalTable, read_evals
from .config import CorrelationConfig
from .scores.correlation import Correlation, correlate, correlate_models
# -- end --
from .config import CONTROLS  # controls and rival statistics (docs/controls.md)
from .science.weight_stats import STATISTICS, WeightStats


__all__ = [
    "CONTROLS",
    "STATISTICS",
    "WeightStats",
    "Analysis",
    "AnalysisConfig",
    "NIN",
    "NodeDimensions",
    "SampleResult",
    "Spectrum",
    "analyze",
    "analyze_graph",
    "analyze_sample",
    "build_nin",
    "describe",
    "emergence",
    "find_identical",
    "fingerprint",
    "iter_full_matrices",
    "node_fractal_dimension",
    "openmp_enabled",
    "resolve_source",
    "spectrum_from_tau",
    "__version__",
    "Checkpoint",
    "Series",
    "analyze_series",
    "load_run",
    "make_series",
    "parse_revision",
    "write_report",
    "Verdict",
    "checkpoint_contrast",
    "verdict",
    # -- benchmark scores and correlation (docs/correlation.md) --
    "Correlation",
    "CorrelationConfig",
    "EvalTable",
    "correlate",
    "correlate_models",
    "read_evals",
]

# --- monitor: exported lazily, so `import neuromfa_native` never imports torch ---
__all__ += ["Monitor"]


def __getattr__(name):
    if name == "Monitor":
        from .integrations.monitor import Monitor

        return Monitor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
# --- end monitor ---
