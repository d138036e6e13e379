"""The `train` command: compose the config with Hydra, run, and turn user mistakes into one sentence."""
import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from trainer.config import config_dir
from trainer.errors import UserError

log = logging.getLogger("trainer")


@hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
def run(cfg):
    from trainer.train import train  # imported here so `train --help` does not wait for torch

    hydra_cfg = HydraConfig.get()
    try:
        metrics = train(cfg, hydra_cfg.runtime.output_dir)
    except UserError as error:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the sweep records the failed job and goes on with the others
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    return metrics.get("best/val_acc", metrics.get("test/acc"))  # what a sweeper (e.g. Optuna) maximises


def main():
    """`train` and `python -m trainer`. Under torchrun (WORLD_SIZE > 1) each process first joins the process
    group, so that all of them agree on one run dir before Hydra composes the config."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return run()
    from trainer import distributed  # imports torch, which `train --help` should not wait for

    distributed.start()
    try:
        return run()
    finally:
        distributed.stop()
