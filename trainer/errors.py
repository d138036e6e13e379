"""The user's mistakes (UserError: one sentence, exit status 2) and the exit statuses losslab chooses."""
import sys


def first_line(error: BaseException, limit: int = 300) -> str:
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


USER_MISTAKE = 2  # the exit status of a mistake the user can fix (trainer/cli.py lists them all)


def refuse(error: UserError) -> None:
    """Stop the process with a user's mistake as one sentence and exit status 2: for code that runs outside the CLI's
    own error handling (Hydra's callbacks, before any job starts)."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    raise Exit(USER_MISTAKE)
