"""The `train` command: compose the config with Hydra, run, and turn user mistakes into one sentence."""
import logging
import os
import sys
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from trainer.config import config_dir
from trainer.errors import UserError
from trainer.interrupt import Interrupted
from trainer.sweep import write_status  # also registers the ${unique_dir:} resolver before Hydra composes

log = logging.getLogger("trainer")


@hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
def run(cfg):
    from trainer.train import run_dir_of, train  # imported here so `train --help` does not wait for torch

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    started = time.perf_counter()
    status_dir = run_dir_of(cfg, run_dir)  # status.json goes where the run's checkpoints and metrics are
    try:
        metrics = train(cfg, run_dir)
    except Interrupted as stop:
        # even in a sweep: the user (or the scheduler) wants the whole process to stop
        write_status(status_dir, time.perf_counter() - started, stop)
        print(stop, file=sys.stderr)
        sys.exit(stop.exit_code)
    except Exception as error:
        write_status(status_dir, time.perf_counter() - started, error)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            # record and go on: the other jobs still run, the summary marks this one failed and the sweep exits 1
            log.error(f"job failed ({' '.join(hydra_cfg.overrides.task)}): {error}",
                      exc_info=not isinstance(error, UserError))
            return None
        if isinstance(error, UserError):
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        raise
    write_status(status_dir, time.perf_counter() - started)
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
