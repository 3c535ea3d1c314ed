"""Figures of results (matplotlib, imported only when plotting): ``series`` (spectra, E,
alpha0, width, node dimensions), ``controls`` (controls, rival statistics, by layer),
``correlation`` (scores against E).  Functions of result objects; they import no result type,
so every layer above can draw."""
