"""One checkpoint's analysis and what the project adds to the method: ``analysis`` (sampled
and full networks to spectra), ``controls`` (null networks, SPEC 9), ``weight_stats`` (rival
statistics, SPEC 10), ``by_layer`` (spectra of groups of centres, SPEC 11)."""
