"""The one base class for errors a user can cause: the CLI prints them as one line, exit 2."""


class BenchError(Exception):
    """Bad input (unknown names, impossible ranges, missing or corrupt files): reported, not raised."""
