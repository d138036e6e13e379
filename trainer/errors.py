def first_line(error, limit=300):
    """An exception's message as one line: its first paragraph (a message wrapped over several lines, such as
    Hydra's, is joined back into its sentence), at most `limit` characters; its type when it has no message."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    line = " ".join(text.split("\n\n")[0].split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


class UserError(Exception):
    """A mistake the user can fix (a config value, a path). The CLI prints its one-sentence message, no traceback."""


class Exit(SystemExit):
    """An exit status chosen by losslab (see trainer/cli.py); Hydra's own failures arrive as a bare SystemExit(1)."""
