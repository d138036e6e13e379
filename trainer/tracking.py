"""What a run records: TensorBoard scalars in the run dir, and metrics.json at the end."""
import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class Tracker:
    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir))

    def scalars(self, values, step):
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def close(self):
        self.writer.close()


def write_json(data, path):
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
