"""hpbench: hyperparameter-robustness benchmarks of image models (Xiao et al. 2021).

Importing ``bench`` registers the paper's models in timm (see ``bench.models``).
"""
from bench import models  # noqa: F401  (registers the timm entrypoints)
from bench.complexity import complexity
from bench.models import MODEL_NAMES, UnknownModelError, create

__all__ = ["MODEL_NAMES", "UnknownModelError", "complexity", "create", "models"]
