"""The one error type media IO raises for bad, corrupt or unsupported input."""


class MediaError(ValueError):
    """Bad, corrupt or unsupported media; the message names the file (or value) and what is allowed.

    A subclass of `ValueError`, so callers that already catch bad input keep working.
    """


class MediaWarning(UserWarning):
    """Media that can be read but not wholly: a truncated file, read up to where it ends."""
