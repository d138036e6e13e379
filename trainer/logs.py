"""The run's own lines (every epoch, the result, warnings): the `trainer` logger writes them to the console as
plain lines, whatever Hydra does with the root logger."""
import logging
import sys

log = logging.getLogger("trainer")


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (a test's capture, a redirect), not the one at import."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


if not log.handlers:
    log.addHandler(_CurrentStdout())
    log.setLevel(logging.INFO)
    log.propagate = False  # Hydra's root handlers would print every line a second time, with a prefix
