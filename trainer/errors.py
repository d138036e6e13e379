def first_line(error):
    """An exception's message cut to its first line (its type when it has none): one sentence has room for no more."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class UserError(Exception):
    """A mistake the user can fix (a config value, a path). The CLI prints its one-sentence message, no traceback."""
