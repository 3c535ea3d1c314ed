"""Benchmark scores and their correlation with a run: ``evals`` (:func:`read_evals`,
:class:`EvalTable`), ``rankcorr`` (rank correlations equal to scipy's), ``correlation``
(:func:`correlate`, :class:`Correlation`)."""
