"""Studies: a study file (TOML) parsed into a typed :class:`Study` (``schema``, ``toml``) and
:func:`resolve`, which applies the command line's overrides to it and says what to run (``resolve``).

**Where study files come from.** ``load(name)`` reads ``studies/<name>.toml`` in the working
directory if there is one, else bench's own (a checkout's top-level ``studies/``, shipped in the
wheel as ``bench/studies/``); ``load(path)`` reads any ``.toml``.

**Precedence,** applied in ``resolve`` and nowhere else: a command-line override, else the
budget's value, else the study file's, else the paper's (``bench.core.paper``: Table 4's ranges
and tuned values, the ``paper`` budget).

**The learning rate** flows one way: the paper's window (Table 4 right, per batch 2048, the
family's good value x [1/8, 4]) x the budget's ``lr_scale`` for (family, optimizer) = the window a
study draws its points from (still per batch 2048; ``bench calibrate`` measures the scale); a
tuned point is the paper's tuned value times the same scale, or the budget's own calibrated value
as it is; the engine then scales the trial's lr linearly to its batch (``bench.recipe.scaled_lr``).
"""
from bench.core.studies.resolve import Overrides, Resolved, resolve, with_data
from bench.core.studies.schema import KINDS, Budget, Range, Study, StudyError, Window
from bench.core.studies.toml import available, load, own_dir, parse, text

__all__ = ["KINDS", "Budget", "Overrides", "Range", "Resolved", "Study", "StudyError", "Window", "available", "load",
           "own_dir", "parse", "resolve", "text", "with_data"]
