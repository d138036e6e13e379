"""Ctrl-C and `kill` (SIGTERM, what schedulers send before preemption) end a run cleanly: the loop finishes the
current step, the run saves last.pt and closes its logs, and the process exits 130 / 143."""
import signal
import threading

from trainer.run.rundir import STOPPED


class Interrupted(Exception):
    status = STOPPED  # what status.json says: resumable

    def __init__(self, signum, last):
        super().__init__(f"stopped by {signal.Signals(signum).name}: {last} holds the last finished step; "
                         f"continue with the same overrides and ckpt_path={last}")
        self.signum = signum

    @property
    def exit_code(self):
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class StopOnSignal:
    """While active, SIGINT/SIGTERM only set `signum`, which the loop checks after every step. A second signal
    stops at once (KeyboardInterrupt), for a user who does not want to wait for the step to end."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self.previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        # handlers can only be installed from the main thread (a threaded launcher keeps the default behaviour)
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        return False

    def requested(self):
        return self.signum is not None
