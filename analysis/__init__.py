"""Analysis of hyperparameter-robustness studies: load trials, EDFs and robustness statistics,
figures and a self-contained HTML report (see docs/storage.md for the data contract)."""

import importlib

_FROM = {"AnalysisError": "load", "load_trials": "load", **{name: "stats" for name in (
    "best_contrast", "bootstrap_best", "delta", "edf", "edf_band", "expected_best", "expected_best_curve", "good_range",
    "ks_delta", "signed_rank", "within_ci")}}


def __getattr__(name: str):  # lazy: `bench --help` registers `bench plot` without pandas and scipy
    if name not in _FROM:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"analysis.{_FROM[name]}"), name)


__all__ = ["AnalysisError", "load_trials", "edf", "edf_band", "delta", "ks_delta", "signed_rank", "bootstrap_best",
           "good_range", "best_contrast", "expected_best", "expected_best_curve", "within_ci"]  # fmt: skip
