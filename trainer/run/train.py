"""A training run, top to bottom: assemble it, restore it when resuming, fit, test the best checkpoint."""
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from trainer.data import epoch_batches, worker_failures_explained
from trainer.logs import log
from trainer.metrics import (ACC, BEST_EPOCH, CALIBRATION, ECE, EPOCHS, GRAD_NORM_MAX, GRAD_NORM_MEAN,
                             HISTORY, LOSS, LR, MAX_GRAD_NORM, PER_CLASS_ACC, R2, RMSE, TEST, TRAIN, VAL, WALL_TIME,
                             monitor_for, pass_results, pass_tags, per_class_tags, result_key, result_line, tag)
from trainer.metrics.scores import per_class_accuracy
from trainer.optim import current_lr
from trainer.run import checkpoint, rundir, top_losses
from trainer.run.assemble import assemble
from trainer.run.checkpoint import Progress
from trainer.run.divergence import Diverged, NonFinite, check_finite, weights_are_finite
from trainer.run.interrupt import Interrupted, StopOnSignal
from trainer.run.loop import evaluate, train_one_epoch
from trainer.run.lr_find import settle_lr
from trainer.run.tracking import Tracker, job_hparams
from trainer.runtime import distributed


@dataclass
class Outputs:
    """Where a training run writes: its folder, TensorBoard, and the two checkpoints."""
    run_dir: Path
    tracker: Tracker

    @property
    def last(self):
        return self.run_dir / "checkpoints" / "last.pt"

    @property
    def best(self):
        return self.run_dir / "checkpoints" / "best.pt"


def train(cfg: DictConfig, place: rundir.Place, *, overrides: Sequence[str] = ()) -> dict:
    """Train (or resume from ckpt_path) in `place` (trainer.run.rundir.place), validate every epoch, keep last.pt and
    best.pt, test best.pt; returns the final metrics."""
    started = time.perf_counter()
    resume = checkpoint.load(cfg.ckpt_path) if cfg.ckpt_path else None
    if resume is not None:
        cfg = with_values(cfg, resume["legacy"])  # keys its losslab did not have: the values it was trained with
    cfg, chosen = settle_lr(cfg, resume=resume, run_dir=place.run_dir)  # optimizer.lr=auto or tune: the rate
    if resume is not None:
        done = Progress.from_state(resume).epoch
        checkpoint.check_resumable(resume["config"], OmegaConf.to_container(cfg, resolve=True), cfg.ckpt_path,
                                   done_epochs=done, before_data=True)
    parts = assemble(cfg)
    progress = Progress()
    if resume is not None:
        checkpoint.check_resumable(resume["config"], parts.config, cfg.ckpt_path, done_epochs=done)
        progress = checkpoint.restore(resume, parts, cfg.ckpt_path)
    run_dir = place.run_dir
    rundir.check_writable(run_dir / "checkpoints")
    place.begin()  # from here on the folder is this run's: its failures are recorded there
    # on resume, hide whatever the interrupted process logged after its last checkpoint
    out = Outputs(run_dir, Tracker(run_dir, purge_step=progress.global_step if resume else None,
                                   enabled=distributed.is_main()))
    try:
        with worker_failures_explained(), StopOnSignal() as stop:
            fit(parts, progress, out=out, stop=stop)
            test = test_best(parts, progress, out=out, chosen=chosen)
    finally:
        out.tracker.close()
    metrics = final_metrics(parts.cfg, progress, test, wall_time_s=time.perf_counter() - started, chosen=chosen)
    if distributed.is_main():  # under torchrun only rank 0 writes
        rundir.write_json(metrics, run_dir / "metrics.json")
        best = monitor_for(parts.cfg.data)
        log.info(f"test {result_line(test)}  (best val {best.metric} {progress.best_value:.4f} at epoch "
                 f"{progress.best_epoch})  -> {run_dir}")
    return metrics


def fit(parts, progress, *, out, stop):
    """The epochs from where `progress` stands to trainer.epochs; updates `progress` and the checkpoints."""
    for epoch in range(progress.epoch + 1, parts.cfg.trainer.epochs + 1):
        try:
            fit_epoch(parts, progress, epoch, out=out, stop=stop)
        except NonFinite as bad:
            kept = f"{out.last} keeps epoch {progress.epoch}" if out.last.exists() else "no checkpoint was written"
            raise Diverged(bad, epoch=epoch, steps=len(parts.loaders.train), lr=current_lr(parts.optimizer),
                           kept=kept) from None
        if stop.requested():
            raise Interrupted(stop.signum, out.last)


def fit_epoch(parts, progress, epoch, *, out, stop):
    """Train one epoch, validate, record, checkpoint."""
    lr = current_lr(parts.optimizer)
    if progress.step == 0:  # not for an epoch resumed midway: its hook ran before the stop
        parts.on_epoch_start(epoch)
    trained = train_epoch(parts, progress, epoch, out=out, stop=stop)
    # validate
    epochs = parts.cfg.trainer.epochs
    val = evaluate(parts.net, parts.loaders.val, objective=parts.objective, runtime=parts.runtime,
                   desc=f"epoch {epoch}/{epochs} val")
    row = {**pass_tags(TRAIN, trained), **pass_tags(VAL, val), LR: lr,
           **{name: trained[name] for name in (GRAD_NORM_MEAN, GRAD_NORM_MAX) if name in trained}}
    out.tracker.scalars(row, epoch)
    if "confusion" in val:  # each class's recall: in TensorBoard, not the history (a class count of scalars)
        out.tracker.scalars(per_class_tags(VAL, per_class_accuracy(val["confusion"])), epoch)
    parts.schedule.after_epoch(row)
    if distributed.is_main():
        shown = ACC if ACC in val else RMSE
        log.info(f"epoch {epoch}/{epochs}  train loss {trained[LOSS]:.4f} {shown} {trained[shown]:.4f}  "
                 f"val loss {val[LOSS]:.4f} {shown} {val[shown]:.4f}  lr {lr:.3g}")
    # checkpoint (metrics are summed over ranks, so every rank agrees on `improved`)
    if not weights_are_finite(parts.model):
        raise NonFinite("weights", "nan or inf", len(parts.loaders.train))
    best = monitor_for(parts.cfg.data)
    improved = best.improved(row[best.tag], progress.best_value)
    if improved:
        progress.best_value, progress.best_epoch = row[best.tag], epoch
    progress.epoch, progress.step, progress.partial = epoch, 0, None
    progress.global_step = epoch * len(parts.loaders.train)
    progress.history = [*progress.history, {"epoch": epoch, **row}]
    checkpoint.save_run(parts, progress, out.last, *([out.best] if improved else []))


def train_epoch(parts, progress, epoch, *, out, stop):
    """The epoch's training steps from where `progress` stands; returns its {LOSS, ACC}. A signal mid-epoch saves
    the step reached in last.pt and raises Interrupted."""
    steps = len(parts.loaders.train)
    steps_before = (epoch - 1) * steps
    metrics = parts.objective.new_metrics(parts.runtime.device, evaluation=False)
    if progress.partial is not None:
        metrics.load_state_dict(progress.partial)
    step = train_one_epoch(
        parts.train_net, epoch_batches(parts.loaders.train, parts.cfg.seed, epoch, skip=progress.step),
        objective=parts.objective, optimizer=parts.optimizer, schedule=parts.schedule, metrics=metrics,
        runtime=parts.runtime, start_step=progress.step, total_steps=steps,
        desc=f"epoch {epoch}/{parts.cfg.trainer.epochs} train", log_every=parts.cfg.trainer.log_every_n_steps,
        on_log=lambda at, values: out.tracker.scalars(values, steps_before + at), stop=stop,
        clip=parts.cfg.trainer.gradient_clip_val)
    if step < steps:  # a signal arrived mid-epoch: save where we are and stop
        progress.step, progress.global_step, progress.partial = step, steps_before + step, metrics.state_dict()
        if weights_are_finite(parts.model):
            checkpoint.save_run(parts, progress, out.last)
        raise Interrupted(stop.signum, out.last)
    trained = metrics.compute()
    check_finite("training loss", trained[LOSS], step)
    return trained


def test_best(parts, progress, *, out, chosen=None):
    """Evaluate best.pt on the test split, draw its pictures and log it with the run's hyperparameters (and the
    rate optimizer.lr=auto or tune chose: `chosen`, from settle_lr)."""
    epochs = parts.cfg.trainer.epochs
    distributed.wait_for_main()  # rank 0 wrote best.pt
    parts.model.load_state_dict(checkpoint.load(out.best)["model"])
    test = evaluate(parts.net, parts.loaders.test, objective=parts.objective, runtime=parts.runtime, desc="test",
                    keep_outputs=True)
    final = {**pass_tags(TEST, test), monitor_for(parts.cfg.data).best_key: progress.best_value, **(chosen or {})}
    out.tracker.scalars(final, epochs)
    if "confusion" in test:
        out.tracker.scalars(per_class_tags(TEST, per_class_accuracy(test["confusion"])), epochs)
    draw_test(parts, test, out=out, step=epochs)
    out.tracker.hparams(job_hparams(parts.cfg), list(final))
    return test


def draw_test(parts, test, *, out, step):
    """The test split's pictures: the confusion matrix, the reliability diagram (also reliability.png) and the top
    losses (top_losses.csv, and top_losses.png for images)."""
    from trainer.run.figures import confusion_figure, predictions_figure, reliability_figure  # matplotlib: only now

    if "confusion" not in test:  # regression: predictions against targets instead
        predictions = parts.objective.predict(test["logits"].float())
        out.tracker.figure("predictions/test", predictions_figure(predictions, test["labels"], "test split",
                                                                  r2=test[R2]), step, save_as="predictions.png")
        top_losses.record(parts, test, tracker=out.tracker, step=step)
        return
    out.tracker.figure("confusion/test", confusion_figure(test["confusion"], "test split"), step)
    out.tracker.figure("reliability/test", reliability_figure(test["calibration"], "test split", ece=test[ECE]),
                       step, save_as="reliability.png")
    top_losses.record(parts, test, tracker=out.tracker, step=step)


def final_metrics(cfg, progress, test, *, wall_time_s, chosen=None):
    """metrics.json of a training run."""
    norms = [row[GRAD_NORM_MAX] for row in progress.history if GRAD_NORM_MAX in row]
    classes = {CALIBRATION: test["calibration"], PER_CLASS_ACC: per_class_accuracy(test["confusion"])} if (
        "confusion" in test) else {}
    return {**pass_results(TEST, test), **classes,
            monitor_for(cfg.data).best_key: progress.best_value, BEST_EPOCH: progress.best_epoch,
            EPOCHS: cfg.trainer.epochs, result_key(TRAIN, LOSS): progress.history[-1][tag(LOSS, TRAIN)],
            WALL_TIME: round(wall_time_s, 3),
            MAX_GRAD_NORM: max(norms, default=None), HISTORY: progress.history, **(chosen or {})}


def with_values(cfg: DictConfig, values: dict) -> DictConfig:
    """A copy of the config with {dotted key: value} set (the config itself when there is nothing to set)."""
    if not values:
        return cfg
    cfg = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg

