"""Early stopping: a run ends once its best validation value (what the run calls best: validation accuracy, a
regression's RMSE, or what data.best picks) has not improved by more than `trainer.early_stopping.min_delta` for
`trainer.early_stopping.patience` epochs in a row.

The count is read from the run's history (one row per finished epoch, stored in every checkpoint), so a resumed run,
and a sweep finished with resume_sweep, stops exactly where an uninterrupted run stops, and checkpoints written before
early stopping existed resume with their count too.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omegaconf import DictConfig

from trainer.metrics import Monitor, monitor_for


@dataclass(frozen=True)
class EarlyStopping:
    monitor: Monitor
    patience: int | None = None  # None: never stop early
    min_delta: float = 0.0       # how much better than the last counted best a value must be, in the metric's units

    @classmethod
    def of(cls, cfg: DictConfig) -> "EarlyStopping":
        settings = cfg.trainer.get("early_stopping") or {}
        return cls(monitor_for(cfg.data), settings.get("patience"), float(settings.get("min_delta") or 0.0))

    def stale_epochs(self, history: Sequence[Mapping]) -> tuple[int, int]:
        """(epochs since the value last improved by more than min_delta, the epoch it did). As Keras and Lightning
        count: the value to beat moves only with an improvement that counts, so a slow creep adds up."""
        to_beat, since, best_epoch = None, 0, 0
        for row in history:
            value = row.get(self.monitor.tag)
            if value is not None and self.monitor.improved(value, to_beat, self.min_delta):
                to_beat, since, best_epoch = value, 0, row["epoch"]
            else:
                since += 1
        return since, best_epoch

    def should_stop(self, history: Sequence[Mapping]) -> bool:
        return self.patience is not None and self.stale_epochs(history)[0] >= self.patience

    def reason(self, history: Sequence[Mapping], epochs: int) -> str:
        """The log line of a run that stops early."""
        since, best_epoch = self.stale_epochs(history)
        return (f"early stopping: best val {self.monitor.metric} has not improved by more than {self.min_delta:g} "
                f"for {since} epochs since epoch {best_epoch} (trainer.early_stopping.patience={self.patience}): "
                f"stopped after epoch {history[-1]['epoch']} of {epochs}")
