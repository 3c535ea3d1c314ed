"""A plain, vectorised numpy implementation of SPEC sections 2-3: the baseline the engine is
measured against.  It is what a careful researcher would write without a compiled core."""
import numpy as np

Q = np.arange(-30, 31) / 10.0


def numpy_tau(src, weight, threshold=150.0, min_edges=11, decimals=0, q=Q):
    d = 1.0 / np.abs(weight.astype(np.float64))
    keep = (d > 1) & (d <= threshold)
    s = src[keep]
    d = np.round(d[keep], decimals)
    nodes, inv, deg = np.unique(s, return_inverse=True, return_counts=True)
    kept = deg >= min_edges
    new_index = np.cumsum(kept) - 1
    mask = kept[inv]
    node = new_index[inv[mask]]
    d = d[mask]
    radii, ridx = np.unique(d, return_inverse=True)
    n_kept, n_r = int(kept.sum()), radii.size
    hist = np.bincount(node * n_r + ridx, minlength=n_kept * n_r).reshape(n_kept, n_r)
    mass = 1 + np.cumsum(hist, axis=1)
    ln_mu = np.log(mass / mass[:, -1:])
    log_z = np.stack([np.log(np.exp(qq * ln_mu).sum(axis=0)) for qq in q])
    x = np.log(radii / radii[-1])
    return np.polyfit(x, log_z.T, 1)[0]
