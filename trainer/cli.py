"""The `train` command: compose the config with Hydra, run the mode it asks for, and turn user mistakes into one
sentence."""
import importlib
import os
import sys
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from trainer import rundir
from trainer.config import config_dir, validate
from trainer.errors import UserError
from trainer.interrupt import Interrupted
from trainer.logs import log

# mode -> the function that runs it, imported when chosen so that `train --help` does not wait for torch
MODES = {"train": "trainer.train:train", "eval": "trainer.evaluation:evaluate_checkpoint",
         "lr_find": "trainer.lr_find:run_lr_find"}


def dispatch(cfg, run_dir):
    """Check the config, then run its mode; returns the run's metrics."""
    validate(cfg, modes=MODES)
    module, function = MODES[cfg.mode].split(":")
    return getattr(importlib.import_module(module), function)(cfg, run_dir)


@hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
def run(cfg):
    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    started = time.perf_counter()
    status_dir = rundir.training_dir(cfg, run_dir)  # status.json goes where the run's checkpoints and metrics are
    try:
        metrics = dispatch(cfg, run_dir)
    except Interrupted as stop:
        # even in a sweep: the user (or the scheduler) wants the whole process to stop
        rundir.write_status(status_dir, time.perf_counter() - started, stop)
        print(stop, file=sys.stderr)
        sys.exit(stop.exit_code)
    except Exception as error:
        rundir.write_status(status_dir, time.perf_counter() - started, error)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            # record and go on: the other jobs still run, the summary marks this one failed and the sweep exits 1
            log.error(f"job failed ({' '.join(hydra_cfg.overrides.task)}): {error}",
                      exc_info=not isinstance(error, UserError))
            return None
        if isinstance(error, UserError):
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        raise
    rundir.write_status(status_dir, time.perf_counter() - started)
    from trainer.metrics import ACC, BEST, TEST, result_key  # torch is loaded by now

    return metrics.get(BEST.best_key, metrics.get(result_key(TEST, ACC)))  # what a sweeper (e.g. Optuna) maximises


def main():
    """`train` and `python -m trainer`. Under torchrun (WORLD_SIZE > 1) each process first joins the process
    group, so that all of them agree on one run dir before Hydra composes the config."""
    rundir.register_resolvers()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return run()
    from trainer import distributed  # imports torch, which `train --help` should not wait for

    distributed.start()
    try:
        return run()
    finally:
        distributed.stop()
