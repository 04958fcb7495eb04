"""The foundation both sides stand on: the error type, the paper's numbers, the model
architectures as data, data specs, the trial identity, the paired draws (``sampling``), the
studies (schema, files, resolve), the records schema and the results layout. It imports neither
torch, nor the engine, nor the runner, nor ``analysis``; ``analysis`` imports only this, and the
engine never imports the runner (tests/core/test_layers.py).
"""
