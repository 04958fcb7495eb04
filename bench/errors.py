"""The runner's user errors: a ``UserError`` (analysis/errors.py), printed as one line, exit 2."""
from analysis.errors import UserError


class BenchError(UserError):
    """Bad input (unknown names, impossible ranges, missing or corrupt files): reported, not raised."""
