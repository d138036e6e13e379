"""What a run records: TensorBoard scalars in the run dir, and metrics.json at the end."""
import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class Tracker:
    """`enabled=False` (ranks other than 0 under torchrun) records nothing, so a run has one events file."""

    def __init__(self, run_dir, enabled=True):
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir)) if enabled else None

    def scalars(self, values, step):
        for name, value in values.items():
            if self.writer is not None:
                self.writer.add_scalar(name, value, step)

    def close(self):
        if self.writer is not None:
            self.writer.close()


def write_json(data, path):
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
