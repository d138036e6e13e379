"""mode=eval: test a checkpoint. The run is assembled exactly as training assembles it (the run's own data, model
and loss, with this command's trainer.* settings: device, precision, channels_last, compile), its weights loaded,
and the test split evaluated."""
from pathlib import Path

from omegaconf import OmegaConf

from trainer import checkpoint, distributed, rundir
from trainer.assemble import assemble
from trainer.checkpoint import Progress
from trainer.logs import log
from trainer.loop import evaluate
from trainer.metrics import ACC, LOSS, TEST, result_key, tag
from trainer.tracking import Tracker


def eval_config(stored, cfg):
    """The config to assemble: the run's own (stored in the checkpoint) with this command's trainer section."""
    config = OmegaConf.create(stored)
    config.trainer = cfg.trainer
    config.mode, config.ckpt_path = cfg.mode, cfg.ckpt_path
    return config


def evaluate_checkpoint(cfg, run_dir):
    state = checkpoint.load(cfg.ckpt_path)
    parts = assemble(eval_config(state["config"], cfg), for_training=False)
    parts.model.load_state_dict(state["model"])
    test = evaluate(parts.net, parts.loaders.test, objective=parts.objective, runtime=parts.runtime, desc="test")
    epoch = Progress.from_state(state).epoch
    metrics = {result_key(TEST, ACC): test[ACC], result_key(TEST, LOSS): test[LOSS], "ckpt_path": str(cfg.ckpt_path),
               "epoch": epoch}
    if not distributed.is_main():  # under torchrun each rank tests its shard, the sums are shared; rank 0 writes
        return metrics
    run_dir = Path(run_dir)
    tracker = Tracker(run_dir)
    tracker.scalars({tag(LOSS, TEST): test[LOSS], tag(ACC, TEST): test[ACC]}, epoch)
    tracker.close()
    rundir.write_json(metrics, run_dir / "metrics.json")
    log.info(f"test acc {test[ACC]:.4f}  loss {test[LOSS]:.4f}  ({cfg.ckpt_path}) -> {run_dir}")
    return metrics
