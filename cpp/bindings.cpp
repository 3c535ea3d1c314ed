// The only file that includes pybind11: converts arrays, releases the GIL, calls the core.
#include <optional>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "neuromfa/nfd.hpp"
#include "neuromfa/onehop.hpp"
#include "neuromfa/partition.hpp"
#include "neuromfa/paths.hpp"
#include "neuromfa/stream.hpp"
#include "neuromfa/half_stats.hpp"
#include "neuromfa/weight_stats.hpp"
#include "neuromfa/scan.hpp"

namespace py = pybind11;
using namespace neuromfa;
template <class T>
using carray = py::array_t<T, py::array::c_style>;

namespace {

// Hands a vector to numpy without a copy.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape = {}) {
    auto* owner = new std::vector<T>(std::move(v));
    py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    if (shape.empty()) shape = {static_cast<py::ssize_t>(owner->size())};
    return py::array_t<T>(shape, owner->data(), free_when_done);
}

WeightView weight_view(const py::array& w, const std::string& kind, int ndim = 1) {
    auto need = [&](const py::dtype& dt) {
        if (!w.dtype().is(dt) || !(w.flags() & py::array::c_style) || w.ndim() != ndim)
            throw py::type_error("weight must be a contiguous " + std::to_string(ndim) + "-d array of dtype " +
                                 std::string(py::str(dt)) + " for weight_kind '" + kind + "'");
    };
    if (kind == "f64") return need(py::dtype::of<double>()), WeightView{w.data(), WeightKind::f64};
    if (kind == "f32") return need(py::dtype::of<float>()), WeightView{w.data(), WeightKind::f32};
    if (kind == "f16") return need(py::dtype::of<std::uint16_t>()), WeightView{w.data(), WeightKind::f16};
    if (kind == "bf16") return need(py::dtype::of<std::uint16_t>()), WeightView{w.data(), WeightKind::bf16};
    throw py::value_error("weight_kind must be one of 'f64', 'f32', 'f16', 'bf16', got '" + kind + "'");
}

py::dict histogram_dict(BoxHistogram&& h) {
    py::dict d;
    d["n_sources"] = h.n_sources;
    d["n_distances"] = h.n_distances;
    d["centre"] = to_numpy(std::move(h.centre));
    d["indptr"] = to_numpy(std::move(h.indptr));
    d["key"] = to_numpy(std::move(h.key));
    d["count"] = to_numpy(std::move(h.count));
    return d;
}

void put_partition(py::dict& d, Partition&& p, std::size_t n_q) {
    const auto n_r = static_cast<py::ssize_t>(p.radius.size());
    d["n_centres"] = p.n_centres;
    d["max_mass"] = p.max_mass;
    d["radius_key"] = to_numpy(std::move(p.radius_key));
    d["radius"] = to_numpy(std::move(p.radius));
    d["log_z"] = to_numpy(std::move(p.log_z), {static_cast<py::ssize_t>(n_q), n_r});
}

// A CSR histogram from Python, the one check of its arrays' shapes for every binding that takes
// one (the core's validate_histogram then checks the values): 1-d arrays, key and count of one
// length (a 2-d count of shape (n, 0) would otherwise pass for n values and be read past its end)
// and indptr ending at it.
HistogramView histogram_view(const carray<std::int64_t>& indptr, const carray<std::int64_t>& key,
                             const carray<std::int64_t>& count) {
    if (indptr.ndim() != 1 || indptr.shape(0) < 1) throw py::value_error("indptr must be a 1-d array of length >= 1");
    if (key.ndim() != 1 || count.ndim() != 1 || key.shape(0) != count.shape(0))
        throw py::value_error("key and count must be 1-d arrays of the same length");
    const HistogramView h{indptr.data(), key.data(), count.data(), indptr.shape(0) - 1};
    if (indptr.at(h.n_centres) != key.shape(0)) throw py::value_error("indptr[-1] must equal len(key)");
    return h;
}

// A dense (node x key) table whose columns are the filter's keys.
void check_table(const carray<std::uint32_t>& table, const DistanceFilter& filter) {
    if (table.ndim() != 2 || table.shape(1) != filter.n_keys())
        throw py::value_error("table must have shape (n_nodes, " + std::to_string(filter.n_keys()) + ")");
}

py::dict onehop_boxes_py(const carray<std::int64_t>& src, const py::array& weight, const std::string& weight_kind,
                         double threshold, int decimals, std::int64_t min_edges, int n_threads, double lower) {
    const WeightView w = weight_view(weight, weight_kind);
    if (src.ndim() != 1 || src.shape(0) != weight.shape(0))
        throw py::value_error("src and weight must be 1-d arrays of the same length");
    const DistanceFilter filter(threshold, decimals, lower);
    BoxHistogram h;
    {
        py::gil_scoped_release release;
        h = onehop_boxes(src.data(), w, src.shape(0), filter, min_edges, n_threads);
    }
    return histogram_dict(std::move(h));
}

py::dict log_partition_py(const carray<std::int64_t>& indptr, const carray<std::int64_t>& key,
                          const carray<std::int64_t>& count, int decimals, const std::vector<double>& q,
                          int n_threads) {
    const HistogramView h = histogram_view(indptr, key, count);
    const Rounding rounding(decimals);
    Partition p;
    {
        py::gil_scoped_release release;
        p = log_partition(h, rounding, q, n_threads);
    }
    py::dict d;
    put_partition(d, std::move(p), q.size());
    return d;
}

py::tuple key_range_py(double threshold, int decimals, double lower) {
    const DistanceFilter filter(threshold, decimals, lower);
    return py::make_tuple(filter.min_key(), filter.n_keys());
}

std::int64_t accumulate_matrix_py(py::array table, const py::array& weight,
                                  const std::string& weight_kind, std::int64_t row_offset, double threshold,
                                  int decimals, int n_threads, double lower) {
    const WeightView w = weight_view(weight, weight_kind, 2);
    const DistanceFilter filter(threshold, decimals, lower);
    const std::int64_t nb = filter.n_keys();
    // the caller's own array, never a converted copy: the counts must land in it
    if (!table.dtype().is(py::dtype::of<std::uint32_t>()) || !(table.flags() & py::array::c_style) ||
        table.ndim() != 2 || table.shape(1) != nb || !table.writeable())
        throw py::type_error("table must be a writeable C-contiguous uint32 array of shape (n_nodes, " +
                             std::to_string(nb) + ")");
    auto* t = static_cast<std::uint32_t*>(table.mutable_data());
    const std::int64_t rows = table.shape(0), n_out = weight.shape(0), n_in = weight.shape(1);
    py::gil_scoped_release release;
    return accumulate_matrix(w, n_out, n_in, t, rows, row_offset, filter, n_threads);
}

py::dict table_histogram_py(const carray<std::uint32_t>& table, double threshold, int decimals, std::int64_t min_edges,
                            int n_threads, double lower) {
    const DistanceFilter filter(threshold, decimals, lower);
    check_table(table, filter);
    BoxHistogram h;
    {
        py::gil_scoped_release release;
        h = table_to_histogram(table.data(), table.shape(0), filter.n_keys(), filter.min_key(), 0, min_edges, n_threads);
    }
    return histogram_dict(std::move(h));
}

py::dict path_boxes_py(const carray<std::int64_t>& src, const carray<std::int64_t>& dst, const py::array& weight,
                       const std::string& weight_kind, double threshold, int decimals, std::int64_t min_edges,
                       bool undirected, int n_threads) {
    const WeightView w = weight_view(weight, weight_kind);
    if (src.ndim() != 1 || dst.ndim() != 1 || src.shape(0) != weight.shape(0) || dst.shape(0) != weight.shape(0))
        throw py::value_error("src, dst and weight must be 1-d arrays of the same length");
    const DistanceFilter filter(threshold, decimals);
    BoxHistogram h;
    {
        py::gil_scoped_release release;
        h = path_boxes(src.data(), dst.data(), w, src.shape(0), filter, min_edges, undirected, n_threads);
    }
    return histogram_dict(std::move(h));
}

py::array_t<double> node_fractal_dimension_py(const carray<std::int64_t>& indptr, const carray<std::int64_t>& key,
                                              const carray<std::int64_t>& count, int n_threads) {
    const HistogramView h = histogram_view(indptr, key, count);
    std::vector<double> nfd;
    {
        py::gil_scoped_release release;
        nfd = node_fractal_dimension(h, n_threads);
    }
    return to_numpy(std::move(nfd));
}

py::dict table_log_partition_py(const carray<std::uint32_t>& table, double threshold, int decimals,
                                std::int64_t min_edges, const std::vector<double>& q, int n_threads, double lower) {
    const DistanceFilter filter(threshold, decimals, lower);
    check_table(table, filter);
    TablePartition p;
    {
        py::gil_scoped_release release;
        p = table_log_partition(table.data(), table.shape(0), filter, min_edges, q, n_threads);
    }
    py::dict d;
    d["centre"] = to_numpy(std::move(p.centre));
    d["n_sources"] = p.n_sources;
    d["n_distances"] = p.n_distances;
    put_partition(d, std::move(p.partition), q.size());
    return d;
}

py::dict table_node_fractal_dimension_py(const carray<std::uint32_t>& table, double threshold,
                                         std::int64_t min_distances, int n_threads) {
    check_table(table, nfd_filter(threshold));
    TableDimensions nfd;
    {
        py::gil_scoped_release release;
        nfd = table_node_fractal_dimension(table.data(), table.shape(0), threshold, min_distances, n_threads);
    }
    py::dict d;
    d["centre"] = to_numpy(std::move(nfd.centre));
    d["dimension"] = to_numpy(std::move(nfd.dimension));
    return d;
}

// ---- rival statistics (docs/controls.md): weight_stats.hpp ----------------------------------------
// The counts and moment sums, in every dict that carries them: weight_moments' WeightMoments and
// HalfStats.finish's HalfTensorStats have these fields alike.
template <class Moments>
void put_moments(py::dict& d, const Moments& m) {
    d["n"] = m.n, d["n_zero"] = m.n_zero, d["n_kept"] = m.n_kept, d["n_nonfinite"] = m.n_nonfinite;
    d["s1"] = m.s1, d["s2"] = m.s2, d["s3"] = m.s3, d["s4"] = m.s4, d["s_abs"] = m.s_abs;
}

py::dict weight_moments_py(const py::array& weight, const std::string& weight_kind, double threshold, int n_threads) {
    const WeightView w = weight_view(weight, weight_kind, 2);
    const std::int64_t rows = weight.shape(0), cols = weight.shape(1);
    WeightMoments mo;
    {
        py::gil_scoped_release release;
        mo = weight_moments(w, rows, cols, threshold, n_threads);
    }
    py::dict d;
    put_moments(d, mo);
    d["row_abs"] = to_numpy(std::move(mo.row_abs));
    return d;
}

// A fit's fields, in every dict that carries one: shape and scale as the iteration left them, and
// whether it converged (the Python layer turns a fit that did not into NaN and a note).
void put_fit(py::dict& d, const WeibullFit& f) {
    d["shape"] = f.shape, d["scale"] = f.scale, d["iterations"] = f.iterations, d["converged"] = f.converged;
}

py::dict weibull_fit_py(const carray<double>& x, const carray<double>& c, int max_iter) {
    if (x.ndim() != 1 || c.ndim() != 1 || x.shape(0) != c.shape(0))
        throw py::value_error("x and c must be 1-d float64 arrays of the same length");
    WeibullFit f;
    {
        py::gil_scoped_release release;
        f = weibull_fit(x.data(), c.data(), x.shape(0), 1e-13, max_iter);
    }
    py::dict d;
    put_fit(d, f);
    return d;
}

WeightKind half_kind(const std::string& kind) {
    if (kind == "f16") return WeightKind::f16;
    if (kind == "bf16") return WeightKind::bf16;
    throw py::value_error("weight_kind must be 'f16' or 'bf16', got '" + kind + "'");
}

// HalfStats.add: counts the patterns (GIL released for blocks worth it).
std::int64_t half_stats_add(HalfStats& h, const carray<std::uint16_t>& bits, int n_threads) {
    const std::int64_t n = bits.size();
    const auto* b = bits.data();
    if (n >= (std::int64_t(1) << 16)) {
        py::gil_scoped_release release;
        h.add(b, n, n_threads);
    } else {
        h.add(b, n, n_threads);
    }
    return n;
}

py::dict half_stats_finish(HalfStats& h) {
    HalfTensorStats s;
    {
        py::gil_scoped_release release;
        s = h.finish();
    }
    py::dict d;
    put_moments(d, s);
    put_fit(d, s.fit);
    return d;
}

py::dict half_stats_pooled_fit(const HalfStats& h) {
    if (!h.fits()) throw py::value_error("HalfStats was built with fit=False");
    WeibullFit f;
    {
        py::gil_scoped_release release;
        f = h.pooled_fit();
    }
    py::dict d;
    put_fit(d, f);
    return d;
}

py::array_t<double> half_stats_pooled_counts(const HalfStats& h) {
    if (!h.fits()) throw py::value_error("HalfStats was built with fit=False: it keeps no pooled counts");
    return to_numpy(h.pooled_counts());
}
// ---- end rival statistics -----------------------------------------------------------------------

// --- the finiteness scan of the fingerprint pass (scan.hpp) ---
std::int64_t count_nonfinite_py(const carray<std::uint8_t>& data, const std::string& dtype, int n_threads) {
    FloatKind kind;
    if (dtype == "float16") kind = FloatKind::f16;
    else if (dtype == "bfloat16") kind = FloatKind::bf16;
    else if (dtype == "float32") kind = FloatKind::f32;
    else if (dtype == "float64") kind = FloatKind::f64;
    else throw py::value_error("dtype must be one of 'float16', 'bfloat16', 'float32', 'float64', got '" + dtype + "'");
    if (data.ndim() != 1) throw py::value_error("data must be a 1-d uint8 array");
    const std::int64_t n_bytes = data.shape(0);
    if (n_bytes % float_size(kind) != 0)
        throw py::value_error("data holds " + std::to_string(n_bytes) + " bytes, not a whole number of " + dtype +
                              " values");
    const std::uint8_t* ptr = data.data();
    py::gil_scoped_release release;
    return count_nonfinite(ptr, n_bytes / float_size(kind), kind, n_threads);
}

const char* const openmp_enabled_doc = R"doc(Whether the compiled core was built with OpenMP.

Returns
-------
bool
    True when the core was compiled with OpenMP: box counting and the streamed full network
    then run on ``n_threads`` threads (``OMP_NUM_THREADS`` by default). False when the
    compiler had no OpenMP: every analysis still runs, on one thread, with the same numbers.

Examples
--------
>>> import neuromfa_native as nm
>>> isinstance(nm.openmp_enabled(), bool)
True
)doc";

const char* const half_stats_doc = R"doc(Rival statistics of 16-bit weights, tensor by tensor.

Each row block of the open tensor is counted into a table of its 2^16 bit patterns (add); finish
gives the tensor's moment sums, counts and Weibull fit from one pass over the patterns that hold
weights, adds its magnitudes to the pooled counts and clears the table for the next tensor.

Not thread-safe: one thread per object. The object keeps state between calls and releases the
GIL inside add, finish and pooled_fit, so two Python threads must not share one (each thread its
own HalfStats; add's n_threads threads run inside the one call).

Parameters
----------
weight_kind : str
    'f16' or 'bf16'.
threshold : float
    T of the kept fraction (1/T <= |w| < 1), > 1.
fit : bool
    also fit the Weibull distribution of the nonzero |w| (and keep the pooled counts).

Examples
--------
>>> import numpy as np
>>> from neuromfa_native import _core
>>> h = _core.HalfStats("f16", 150.0, True)
>>> h.add(np.array([0.5, -0.25, 0.0, 2.0], dtype=np.float16).view(np.uint16), 1)
4
>>> s = h.finish()
>>> s["n"], s["n_zero"], s["n_kept"], s["s1"], s["s_abs"]
(4, 1, 2, 2.25, 2.75)
)doc";

// Box histograms, partition functions, node dimensions: the engine.
void def_boxes(py::module_& m) {
    m.def("onehop_boxes", &onehop_boxes_py, py::arg("src").noconvert(), py::arg("weight"), py::arg("weight_kind"),
          py::arg("threshold"), py::arg("decimals"), py::arg("min_edges"), py::arg("n_threads"), py::arg("lower") = 1.0,
          "One-hop box histograms (CSR of rounded-distance keys and counts) of every source node.");
    m.def("log_partition", &log_partition_py, py::arg("indptr").noconvert(), py::arg("key").noconvert(), py::arg("count").noconvert(),
          py::arg("decimals"), py::arg("q"), py::arg("n_threads"),
          "ln Z_q(r) of box histograms on their radius grid.");
    m.def("key_range", &key_range_py, py::arg("threshold"), py::arg("decimals"), py::arg("lower") = 1.0,
          "(first key, number of keys) that kept distances can have: the columns of a dense table.");
    m.def("accumulate_matrix", &accumulate_matrix_py, py::arg("table").noconvert(), py::arg("weight"), py::arg("weight_kind"),
          py::arg("row_offset"), py::arg("threshold"), py::arg("decimals"), py::arg("n_threads"),
          py::arg("lower") = 1.0,
          "Adds a weight matrix's column distances into a dense (node x key) table; returns the flat "
          "index of the first NaN/Inf weight or -1.");
    m.def("table_histogram", &table_histogram_py, py::arg("table").noconvert(), py::arg("threshold"), py::arg("decimals"),
          py::arg("min_edges"), py::arg("n_threads"), py::arg("lower") = 1.0,
          "Box histograms (CSR) from a dense (node x key) table.");
    m.def("table_log_partition", &table_log_partition_py, py::arg("table").noconvert(), py::arg("threshold"),
          py::arg("decimals"), py::arg("min_edges"), py::arg("q"), py::arg("n_threads"), py::arg("lower") = 1.0,
          "ln Z_q(r) straight from a dense (node x key) table; 'centre' holds the kept rows.");
    m.def("table_node_fractal_dimension", &table_node_fractal_dimension_py, py::arg("table").noconvert(),
          py::arg("threshold"), py::arg("min_distances"), py::arg("n_threads"),
          "Node fractal dimensions (SPEC 5) of the rows of a dense table built with 0 < d <= threshold.");
    m.def("path_boxes", &path_boxes_py, py::arg("src").noconvert(), py::arg("dst").noconvert(), py::arg("weight"), py::arg("weight_kind"),
          py::arg("threshold"), py::arg("decimals"), py::arg("min_edges"), py::arg("undirected"),
          py::arg("n_threads"), "Path-box histograms: rounded shortest-path distances within the threshold.");
    m.def("node_fractal_dimension", &node_fractal_dimension_py, py::arg("indptr").noconvert(), py::arg("key").noconvert(), py::arg("count").noconvert(),
          py::arg("n_threads"), "Node fractal dimension (SPEC 5) of every centre of an integer-keyed histogram.");
}

// Rival statistics (docs/controls.md).
void def_rival_statistics(py::module_& m) {
    m.def("weight_moments", &weight_moments_py, py::arg("weight"), py::arg("weight_kind"), py::arg("threshold"),
          py::arg("n_threads"),
          "Sums of w, w^2, w^3, w^4, |w|, counts of zero/kept/non-finite weights and the |w| sum of each "
          "row of a 2-d block, one pass, ordered reduction.");
    py::class_<HalfStats>(m, "HalfStats", half_stats_doc)
        .def(py::init([](const std::string& weight_kind, double threshold, bool fit) {
                 if (!(threshold > 1.0)) throw py::value_error("threshold must be > 1");
                 return HalfStats(half_kind(weight_kind), threshold, fit);
             }),
             py::arg("weight_kind"), py::arg("threshold"), py::arg("fit"))
        .def("add", &half_stats_add, py::arg("bits").noconvert(), py::arg("n_threads"),
             "Counts the bit patterns (a 1-d uint16 array) of a block of the open tensor; returns how many.")
        .def("finish", &half_stats_finish,
             "The open tensor is complete: dict of n, n_zero, n_kept, n_nonfinite, s1, s2, s3, s4, s_abs (sums "
             "of w^p and |w| over the finite weights) and shape, scale, iterations, converged (Weibull fit of "
             "the nonzero finite |w|; NaN without fit or with fewer than two distinct values, the last iterate "
             "with converged=False when the iteration did not converge). Clears the table.")
        .def("pooled_fit", &half_stats_pooled_fit,
             "Weibull fit (dict of shape, scale, iterations, converged) of the nonzero finite |w| of every "
             "finished tensor together.")
        .def("pooled_counts", &half_stats_pooled_counts,
             "Counts of every positive magnitude pattern (index: the pattern without its sign bit, 32768 "
             "float64) over the finished tensors; inf/NaN patterns hold 0.")
        .def_property_readonly("tensors", &HalfStats::tensors, "Tensors finished so far.");
    m.def("weibull_fit", &weibull_fit_py, py::arg("x").noconvert(), py::arg("c").noconvert(), py::arg("max_iter") = 200,
          "Weibull maximum-likelihood fit (location 0) of positive values x with weights c: dict of shape, "
          "scale, iterations, converged (False: the last iterate after max_iter iterations).");
}

void def_scan(py::module_& m) {
    m.def("count_nonfinite", &count_nonfinite_py, py::arg("data").noconvert(), py::arg("dtype"), py::arg("n_threads"),
          R"doc(Non-finite values (NaN, +-inf) among little-endian floats, counted in parallel.

Parameters
----------
data : numpy.ndarray
    a contiguous 1-d uint8 array holding whole values (``np.frombuffer(b, np.uint8)``: no copy).
dtype : str
    'float16', 'bfloat16', 'float32' or 'float64'.
n_threads : int
    OpenMP threads (-1: all cores); the count does not depend on it.

Examples
--------
>>> import numpy as np
>>> from neuromfa_native import _core
>>> x = np.array([1.0, np.nan, -np.inf, 0.0], dtype=np.float16)
>>> _core.count_nonfinite(x.view(np.uint8), "float16", 1)
2
)doc");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "neuromfa_native C++ core: distance filtering, box histograms, partition functions";
#ifdef NEUROMFA_VERSION
    m.attr("__version__") = NEUROMFA_VERSION;
#endif
    m.def("openmp_enabled", &openmp_enabled, openmp_enabled_doc);
    m.def("max_threads", [] { return resolve_threads(-1); }, "Threads that n_threads=-1 means.");
    def_boxes(m);
    def_rival_statistics(m);
    def_scan(m);
}
