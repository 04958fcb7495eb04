"""hpbench: hyperparameter-robustness benchmarks of image models (Xiao et al. 2021).

Importing ``bench`` registers the paper's models in timm (see ``bench.models``): at once if timm
is already imported, else as soon as it is. ``bench`` itself imports neither torch nor timm, so
the CLI answers without them; ``bench.create``, ``bench.complexity`` etc. load them on first use.
"""
import importlib
import importlib.abc
import importlib.util
import sys

# name -> (module, attribute; None: the module itself, e.g. the callable module bench.complexity)
_LAZY = {"MODEL_NAMES": ("bench.core.models", "MODEL_NAMES"),
         "UnknownModelError": ("bench.core.models", "UnknownModelError"),
         "create": ("bench.models", "create"), "complexity": ("bench.complexity", None), "models": ("bench.models", None)}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    module, attr = _LAZY[name]
    module = importlib.import_module(module)
    return module if attr is None else getattr(module, attr)


class _RegisterWithTimm(importlib.abc.MetaPathFinder):
    """Runs ``import bench.models`` right after timm itself is imported (Python has no post-import
    hook: this finder wraps timm's loader once, then leaves ``sys.meta_path``)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("timm")
        exec_timm = spec.loader.exec_module

        def exec_and_register(module):
            exec_timm(module)
            importlib.import_module("bench.models")

        spec.loader.exec_module = exec_and_register
        return spec


if "timm" in sys.modules:
    importlib.import_module("bench.models")
elif not any(isinstance(f, _RegisterWithTimm) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithTimm())
