"""The one base class for errors a user can cause, shared by both sides of the project: the
``bench`` CLI prints any of them as one line and exits 2 (``bench.errors.BenchError`` derives from
it, so the analysis side needs nothing from ``bench``)."""


class UserError(Exception):
    """Bad input (unknown names, impossible ranges, missing or corrupt files): reported, not raised."""
