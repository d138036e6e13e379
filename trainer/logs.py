"""The run's own lines (every epoch, the result, warnings): the `trainer` logger writes them to the console as plain
lines, whatever Hydra does with the root logger, and, while a run has its folder, to its train.log too (with the
time), together with Python warnings and a failed run's traceback."""
from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path
    from typing import TextIO

log = logging.getLogger("trainer")
warnings_log = logging.getLogger("py.warnings")  # where logging.captureWarnings sends warnings.warn


class _CurrentStream(logging.StreamHandler):
    """Writes to whatever sys.stdout (or stderr) is at the time (a test's capture, a redirect), not the one at
    import."""

    def __init__(self, name: str):
        super().__init__()
        self.name_of_stream = name

    @property
    def stream(self) -> TextIO:
        return getattr(sys, self.name_of_stream)

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is not None:  # None: train was started with it closed (`train >&-`); train.log has the lines
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):  # the reader went away (`train | head`): the run goes on,
            return                                          # and train.log keeps every line
        super().handleError(record)


if not log.handlers:
    log.addHandler(_CurrentStream("stdout"))
    log.setLevel(logging.INFO)
    log.propagate = False  # Hydra's root handlers would print every line a second time


class RunLog:
    """train.log of one run folder, appended to (a resumed run continues its log), from `start()` to `stop()`."""

    def __init__(self, path: str | Path):
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
        self.console = _CurrentStream("stderr")  # warnings keep going to the console as Python prints them

    def start(self) -> RunLog:
        log.addHandler(self.handler)
        warnings_log.addHandler(self.handler)
        warnings_log.addHandler(self.console)
        warnings_log.propagate = False
        logging.captureWarnings(True)
        return self

    def note(self, message: str) -> None:
        """A line for train.log only (the command that started or resumed the run)."""
        self.handler.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, message, None, None))

    def failure(self, error: BaseException) -> None:
        """A failed run's error with its traceback, into train.log only: the console shows one sentence."""
        record = log.makeRecord(log.name, logging.ERROR, __file__, 0, f"run failed: {error}", None,
                                (type(error), error, error.__traceback__))
        self.handler.handle(record)

    def stop(self) -> None:
        logging.captureWarnings(False)
        for logger, handler in ((log, self.handler), (warnings_log, self.handler), (warnings_log, self.console)):
            logger.removeHandler(handler)
        self.handler.close()
