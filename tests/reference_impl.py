"""A slow, obviously-correct implementation of docs/spec.md sections 2-3, the yardstick for the engine.

Plain Python loops over nodes and radii; numpy only for round/log/polyfit, exactly as the
published scripts use them.
"""
import numpy as np

Q = np.arange(-30, 31) / 10.0


def distances_by_node(src, weight):
    """{node: [1/|w| for each out-edge]} with float16 weights widened exactly."""
    out = {}
    for s, w in zip(np.asarray(src).tolist(), np.asarray(weight).astype(np.float64).tolist()):
        if w != 0:
            out.setdefault(int(s), []).append(1.0 / abs(w))
    return out


def kept_distances(lists, threshold=150.0, min_edges=11, decimals=0):
    """The rounded distances of every kept node (the filter of docs/spec.md section 2)."""
    kept = []
    for node in sorted(lists):
        d = np.asarray(lists[node], dtype=np.float64)
        d = d[(d > 1) & (d <= threshold)]
        if len(d) >= min_edges:
            kept.append(np.round(d, decimals))
    return kept


def fittable(src, weight, **kw):
    """Whether tau can be fitted: some node is kept and the radius grid has two values or more."""
    kept = kept_distances(distances_by_node(src, weight), **kw)
    return bool(kept) and np.unique(np.concatenate(kept)).size >= 2


def reference_tau(lists, threshold=150.0, min_edges=11, decimals=0, q=Q):
    """tau(q), the radius grid and the number of kept nodes from per-node distance lists."""
    kept = kept_distances(lists, threshold, min_edges, decimals)
    if not kept:
        raise ValueError("no node kept")
    radii = np.unique(np.concatenate(kept))
    if radii.size < 2:
        raise ValueError("a single radius: ln Z cannot be fitted against ln r")
    diameter = radii.max()
    z = np.zeros((len(q), len(radii)))
    for d in kept:
        total = 1 + len(d)
        for j, r in enumerate(radii):
            mu = (1 + np.sum(d <= r)) / total
            for k, qq in enumerate(q):
                z[k, j] += mu ** qq
    x = np.log(radii / diameter)
    tau = np.array([np.polyfit(x, np.log(z[k]), 1)[0] for k in range(len(q))])
    return tau, radii, len(kept)


def reference_spectrum(tau, q=Q):
    alpha = np.diff(tau) / np.diff(q)
    f = q[:-1] * alpha - tau[:-1]
    return alpha, f


def reference_graph(src, weight, **kw):
    return reference_tau(distances_by_node(src, weight), **kw)


def reference_path_lists(src, dst, w, threshold, undirected):
    """{node: [shortest-path lengths to the other nodes within threshold]} by scipy's Dijkstra."""
    from scipy import sparse
    from scipy.sparse import csgraph
    d = 1 / np.abs(w.astype(np.float64))
    keep = (d > 1) & (d <= threshold)
    ids = np.unique(np.concatenate([src, dst]))
    a, b = np.searchsorted(ids, src[keep]), np.searchsorted(ids, dst[keep])
    # parallel edges: keep the shortest (csr_matrix would add them up)
    n = ids.size
    best = {}
    for i, j, dd in zip(a, b, d[keep]):
        best[(i, j)] = min(best.get((i, j), np.inf), dd)
    keys = np.array(list(best.keys())).reshape(-1, 2)
    g = sparse.csr_matrix((list(best.values()), (keys[:, 0], keys[:, 1])), shape=(n, n))
    dist = csgraph.dijkstra(g, directed=not undirected, limit=threshold)
    lists = {}
    for i in range(n):
        row = np.delete(dist[i], i)
        lists[int(ids[i])] = row[np.isfinite(row) & (row <= threshold)].tolist()
    return lists


def reference_nfd(distances, threshold=200.0):
    """Node fractal dimension (docs/spec.md section 5) of one node's distances; radii rounding to 0 left out."""
    d = np.asarray(distances, float)
    d = d[(d > 0) & (d <= threshold)]
    if d.size <= 10:
        return 0.0
    d = np.round(d)
    radii = np.unique(d)
    radii = radii[radii > 0]
    if radii.size < 2:
        return 0.0
    c = np.array([1 + np.sum(d <= r) for r in radii])
    return float(np.polyfit(np.log(radii), np.log(c), 1)[0])
