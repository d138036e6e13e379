"""What a run records in TensorBoard: scalars, figures and the hyperparameters of the HParams tab."""
from pathlib import Path

from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from trainer.config import override_key
from trainer.drawing import pixels

# Shown in TensorBoard's HParams tab for every run, besides the chosen config-group options and whatever the
# command line overrides.
HPARAM_KEYS = ("optimizer.lr", "data.batch_size", "trainer.epochs", "seed")


class Tracker:
    """`enabled=False` (ranks other than 0 under torchrun) records nothing, so a run has one events file.
    `purge_step` (a resumed run) hides what an interrupted process logged after its last checkpoint."""

    def __init__(self, run_dir, purge_step=None, enabled=True):
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step) if enabled else None

    def scalars(self, values, step):
        for name, value in values.items():
            if self.writer is not None:
                self.writer.add_scalar(name, value, step)

    def figure(self, tag, figure, step, save_as=None):
        """A matplotlib Figure as an image under `tag`; `save_as`: also a PNG of that name in the run dir. Drawn
        once for both: drawing is most of what a figure costs."""
        if self.writer is None:
            return
        from matplotlib.image import imsave

        image = pixels(figure)
        if save_as is not None:
            imsave(self.run_dir / save_as, image)
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def hparams(self, values, metric_tags):
        """Record the run's hyperparameters for the HParams tab, next to scalars already logged under
        `metric_tags`. Written into this run's own event file (SummaryWriter.add_hparams would open a new
        timestamped sub-run), so TensorBoard shows one run per job, named by its folder."""
        if self.writer is None:
            return
        for summary in hparams_summaries(values, {tag: 0.0 for tag in metric_tags}):
            self.writer.file_writer.add_summary(summary)

    def close(self):
        if self.writer is not None:
            self.writer.close()


def run_hparams(cfg, choices=None, overrides=()):
    """{name: value} for the HParams tab: the option chosen in each config group (`choices`, e.g.
    {"loss": "ce"}), the usual knobs (HPARAM_KEYS) and every key the command line overrode. Values are
    numbers or strings, which TensorBoard accepts (anything else, lists included, is written as a string)."""
    values = {group: str(option) for group, option in (choices or {}).items() if not group.startswith("hydra")}
    keys = list(HPARAM_KEYS) + [override_key(o) for o in overrides if override_key(o) not in values]
    for key in keys:
        value = OmegaConf.select(cfg, key, default=None)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        # torch stores a bool as 0/1; a string reads better in the table
        values[key] = value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else str(value)
    return values


def job_hparams(cfg):
    """run_hparams of the running Hydra job; without Hydra (train() called directly) no choices or overrides."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return run_hparams(cfg)
    job = HydraConfig.get()
    return run_hparams(cfg, job.runtime.choices, job.overrides.task)
