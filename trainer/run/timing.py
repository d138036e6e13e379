"""Where a run's time goes: the seconds of each phase (start-up, data, training, validation, test, pictures,
checkpoints), one line at the end of the run, and the speed of every epoch (samples per second, seconds per epoch,
the time left) for the epoch line, the progress bar, TensorBoard (`perf/...`) and the history."""
import time
from collections.abc import Iterator
from contextlib import contextmanager

import trainer

# the phases of a run, in the order the line gives them
STARTUP, LR_FIND, DATA, TRAINING, VALIDATION, TEST, PICTURES, CHECKPOINTS = (
    "start-up", "lr range test", "data and model", "training", "validation", "test", "pictures", "checkpoints")
PHASES = (STARTUP, LR_FIND, DATA, TRAINING, VALIDATION, TEST, PICTURES, CHECKPOINTS)
_first_run = [True]  # the first run of a process also paid for its start-up (imports, Hydra); a sweep's later jobs not


class RunClock:
    """Seconds spent per phase of one run, from the moment `train` begins (and, for the first run of the process,
    its start-up before that: imports and config composition since `trainer` was imported)."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.spent: dict[str, float] = {}
        if _first_run[0]:
            _first_run[0] = False
            self.spent[STARTUP] = self.began - trainer.STARTED
        self.started = self.began - self.spent.get(STARTUP, 0.0)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the seconds the `with` block takes to phase `name`."""
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - begun

    def line(self) -> str:
        """"time 9.8 s: start-up 2.9 s, data and model 0.4 s, training 4.6 s, ..., other 0.1 s": the phases that
        took time, and what none of them holds (the run's own bookkeeping: TensorBoard, metrics.json, ...)."""
        total = time.perf_counter() - self.started
        parts = [f"{name} {self.spent[name]:.1f} s" for name in PHASES if self.spent.get(name, 0.0) >= 0.05]
        other = total - sum(self.spent.values())
        return f"time {total:.1f} s: {', '.join(parts + [f'other {max(other, 0.0):.1f} s'])}"


class EpochSpeed:
    """How fast the epochs of this process go, for the time left: the mean wall time of the epochs it finished
    (training, validation and checkpoint), times the epochs still to train."""

    def __init__(self) -> None:
        self.began, self.epochs = time.perf_counter(), 0

    def finished_one(self) -> None:
        self.epochs += 1

    def left_s(self, epochs_left: int) -> float:
        return (time.perf_counter() - self.began) / max(self.epochs, 1) * epochs_left


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min: a time left as a person reads it."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
