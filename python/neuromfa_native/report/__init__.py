"""What a run directory shows people: ``tables`` (CSV/Parquet tables, ``summary.json``, the
terminal table), ``html`` (``report.html``), ``compare`` (runs side by side and the
sensitivity grid)."""
