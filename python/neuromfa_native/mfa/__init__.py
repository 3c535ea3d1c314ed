"""The method on any weighted graph: box types, the spectrum fit, emergence and its statistics.

``boxes`` (the box-type registry), ``engine`` (:func:`analyze_graph`, :class:`Spectrum`),
``stats`` (means over samples, E and its bootstrap interval).  Knows nothing of models.
"""
