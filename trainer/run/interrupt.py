"""Ctrl-C and `kill` (SIGTERM, what schedulers send before preemption) end a run cleanly at any moment: during the
epochs the loop finishes the current step and the run saves last.pt; anywhere else (reading the data, the range test,
the final test, an evaluation) the run stops at once. Either way status.json says "stopped", one line says what to
run next, and the process exits 130 / 143."""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.run.rundir import STOPPED

if TYPE_CHECKING:
    from types import FrameType
    from typing import Self

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """A run stopped by a signal; `last`: the checkpoint it can continue from (a path that may not exist)."""
    status = STOPPED  # what status.json says: resumable

    def __init__(self, signum: int, last: str | Path | None = None):
        if last is not None and Path(last).is_file():
            then = f"{last} holds the last finished step; continue with the same overrides and ckpt_path={last}"
        else:
            then = "it had written no checkpoint, so nothing is lost: run the same command again"
        super().__init__(f"stopped by {signal.Signals(signum).name}: {then}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class Stop(KeyboardInterrupt):
    """A signal that stops the run where it is. A KeyboardInterrupt (a BaseException), so that no `except Exception`
    on its way (a data reader's, a library's) mistakes it for an error."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Handlers:
    """While active, `handle` receives SIGINT and SIGTERM; the handlers before are restored after. Handlers can only
    be installed from the main thread (a threaded launcher keeps the default behaviour)."""

    def __init__(self):
        self.previous = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        raise Stop(signum)

    def __enter__(self):
        return self.install()

    def install(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self.handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        return False


class StopAtOnce(_Handlers):
    """While active (or once installed: the CLI, for the whole process), SIGINT/SIGTERM raise Stop wherever the
    program is."""


class StopOnSignal(_Handlers):
    """While active (the epochs), SIGINT/SIGTERM only set `signum`, which the loop checks after every step. A second
    signal stops at once (Stop), for a user who does not want to wait for the step to end."""

    def __init__(self):
        super().__init__()
        self.signum = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Stop(signum)
        self.signum = signum

    def requested(self) -> bool:
        return self.signum is not None
