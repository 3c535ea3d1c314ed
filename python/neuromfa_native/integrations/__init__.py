"""Training-framework callbacks over :class:`~neuromfa_native.integrations.monitor.Monitor`.

- :mod:`.transformers`: ``NeuroMFACallback`` for the Hugging Face ``Trainer``;
- :mod:`.lightning`: ``NeuroMFACallback`` for ``lightning`` / ``pytorch_lightning``.

Import the submodule you need; this package imports neither framework.
"""
