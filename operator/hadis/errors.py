"""User-facing errors: the CLI prints their message (no traceback) and exits non-zero."""


class UserError(Exception):
    """Bad input from the user: a file, a field, a flag. The message names it and says why."""


class InputFileError(UserError):
    """A profile, sweep or trace file that cannot be read or parsed."""
