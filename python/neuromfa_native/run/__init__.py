"""A checkpoint series: ``checkpoints`` (names, steps, order), ``series`` (the :class:`Series`
result), ``store`` (the atomic, resumable run directory), ``runner`` (plan, execute, collect)."""
