"""Reading weights: local and remote checkpoints as lazy tensor providers.

``base`` (the :class:`~.base.TensorSource` interface), ``safetensors`` (the file format, no
torch), ``ranged`` (tensors read by byte range), ``torch_zip`` (``pytorch_model.bin`` without
torch), ``remote`` (URLs and hub revisions read by range), ``sources`` (:func:`resolve_source`:
any source to a provider), ``checkpoint_reader`` (the checkpoints of a series, with bounded
disk).  Nothing here knows about networks or spectra.
"""
