class UserError(Exception):
    """A mistake the user can fix (a config value, a path). The CLI prints its one-sentence message, no traceback."""
