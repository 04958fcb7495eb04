"""Analysis of hyperparameter-robustness studies: load trials, EDFs and robustness statistics,
figures and a self-contained HTML report (see docs/records.md for the data contract)."""

from .load import AnalysisError, load_trials
from .stats import bootstrap_best, delta, edf, edf_band, expected_best, expected_best_curve, gap, good_range, ks, paired

__all__ = ["AnalysisError", "load_trials", "edf", "edf_band", "delta", "ks", "paired", "bootstrap_best",
           "good_range", "gap", "expected_best", "expected_best_curve"]  # fmt: skip
