"""The one base class for errors a user can cause (unknown names, impossible ranges, missing or
corrupt files): the ``bench`` CLI prints any of them as one line and exits 2. Each part raises a
subclass that says what went wrong (``StudyError``, ``DataError``, ``TrialError``, ...)."""


class UserError(Exception):
    """Bad input (unknown names, impossible ranges, missing or corrupt files): reported, not raised."""
