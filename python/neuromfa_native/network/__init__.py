"""Neuron interaction networks of a model: ``architectures`` (the layer maps of each family)
and ``nin`` (sampled and full networks, fingerprints, sizes)."""
