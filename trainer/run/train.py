"""A training run, top to bottom: assemble it, restore it when resuming, fit, test the best checkpoint."""
from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from trainer.config import check_stored
from trainer.data import epoch_batches, worker_failures_explained
from trainer.drawing import start_painter
from trainer.logs import log
from trainer.metrics import (ACC, BEST_EPOCH, CALIBRATION, ECE, EPOCH, EPOCH_S, EPOCHS, GRAD_NORM_MAX, GRAD_NORM_MEAN,
                             HISTORY, LOSS, LR, MAX_GRAD_NORM, PER_CLASS_ACC, R2, RMSE, SAMPLES_PER_S, STOPPED_EPOCH,
                             TEST, TRAIN, VAL, WALL_TIME, monitor_for, pass_results, pass_tags, per_class_tags,
                             result_key, result_line, tag)
from trainer.metrics.scores import per_class_accuracy
from trainer.optim import current_lr
from trainer.run import checkpoint, rundir, top_losses
from trainer.run.assemble import assemble
from trainer.run.checkpoint import Progress
from trainer.run.divergence import Diverged, NonFinite, check_finite, weights_are_finite
from trainer.run.early_stopping import EarlyStopping
from trainer.run.interrupt import Interrupted, StopOnSignal
from trainer.run.loop import evaluate, train_one_epoch
from trainer.run.lr_find import settle_lr
from trainer.run.timing import (CHECKPOINTS, DATA, LR_FIND, PICTURES, TEST as TESTING, TRAINING, VALIDATION,
                                EpochSpeed, RunClock, duration)
from trainer.run.hparams import job_hparams, metric_columns
from trainer.run.tracking import Tracker
from trainer.runtime import distributed

if TYPE_CHECKING:
    from trainer.metrics import Monitor
    from trainer.run.assemble import Assembly


@dataclass
class Outputs:
    """Where a training run writes: its folder, TensorBoard, and the two checkpoints; and what it measures of its
    own time."""
    run_dir: Path
    tracker: Tracker
    clock: RunClock
    saver: checkpoint.Saver = field(default_factory=checkpoint.Saver)

    @property
    def last(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"


def train(cfg: DictConfig, place: rundir.Place, *, overrides: Sequence[str] = ()) -> dict:
    """Train (or resume from ckpt_path) in `place` (trainer.run.rundir.place), validate every epoch, keep last.pt and
    best.pt, stop early if trainer.early_stopping says so, test best.pt; returns the final metrics."""
    clock = RunClock()
    if distributed.is_main():  # it imports matplotlib while this process imports and prepares the rest
        start_painter()
    resume = checkpoint.load(cfg.ckpt_path) if cfg.ckpt_path else None
    if resume is not None:  # data, never code, as for mode=eval: refused before it is compared or restored
        check_stored(resume["config"], source=f"ckpt_path={cfg.ckpt_path}", overrides=overrides)
        cfg = with_values(cfg, resume["legacy"])  # keys its losslab did not have: the values it was trained with
    with clock.phase(LR_FIND):
        cfg, chosen = settle_lr(cfg, resume=resume, run_dir=place.run_dir)  # optimizer.lr=auto or tune: the rate
    if resume is not None:
        done = Progress.from_state(resume).epoch
        checkpoint.check_resumable(resume["config"], OmegaConf.to_container(cfg, resolve=True), cfg.ckpt_path,
                                   done_epochs=done, before_data=True)
    with clock.phase(DATA):
        parts = assemble(cfg)
    progress = Progress(chosen=chosen or None)
    if resume is not None:
        checkpoint.check_resumable(resume["config"], parts.config, cfg.ckpt_path, done_epochs=done)
        progress = checkpoint.restore(resume, parts, cfg.ckpt_path)
        progress.chosen = {**(progress.chosen or {}), **chosen} or None  # the search's rate and budget, kept
    rundir.check_writable(place.run_dir / "checkpoints")
    place.begin()  # from here on the folder is this run's: its failures are recorded there
    # on resume, hide whatever the interrupted process logged after its last checkpoint
    out = Outputs(place.run_dir, Tracker(place.run_dir, purge_step=progress.global_step + 1 if resume else None,
                                         enabled=distributed.is_main()), clock)
    try:
        with worker_failures_explained():
            with StopOnSignal() as stop:  # the epochs end a step before they stop; anything else stops at once
                fit(parts, progress, out=out, stop=stop)
            test = test_best(parts, progress, out=out)
        with clock.phase(PICTURES):
            out.tracker.finish_pictures()
    finally:
        out.tracker.close()
        out.saver.finish()
    metrics = final_metrics(parts.cfg, progress, test, wall_time_s=time.perf_counter() - clock.began)
    if distributed.is_main():  # under torchrun only rank 0 writes
        report(metrics, test, monitor_for(parts.cfg.data), progress, run_dir=place.run_dir, clock=clock)
    return metrics


def report(metrics: dict[str, object], test: dict, best: Monitor, progress: Progress, *, run_dir: Path,
           clock: RunClock) -> None:
    """metrics.json, the test line and where the time went."""
    rundir.write_json(metrics, run_dir / "metrics.json")
    log.info(f"test {result_line(test)}  (best val {best.metric} {progress.best_value:.4f} at epoch "
             f"{progress.best_epoch})  -> {run_dir}")
    log.info(clock.line())


def fit(parts: Assembly, progress: Progress, *, out: Outputs, stop: StopOnSignal) -> None:
    """The epochs from where `progress` stands to trainer.epochs, or until early stopping ends the run (also a run
    resumed after it did); updates `progress` and the checkpoints."""
    epochs, stopping, speed = parts.cfg.trainer.epochs, EarlyStopping.of(parts.cfg), EpochSpeed()
    for epoch in range(progress.epoch + 1, epochs + 1):
        if stopping.should_stop(progress.history):
            log.info(stopping.reason(progress.history, epochs))
            return
        try:
            fit_epoch(parts, progress, epoch, out=out, stop=stop)
        except NonFinite as bad:
            out.saver.wait()
            kept = f"{out.last} keeps epoch {progress.epoch}" if out.last.exists() else "no checkpoint was written"
            raise Diverged(bad, epoch=epoch, steps=len(parts.loaders.train), lr=current_lr(parts.optimizer),
                           kept=kept) from None
        speed.finished_one()
        if distributed.is_main():
            log.info(epoch_line(progress.history[-1], epochs, left_s=speed.left_s(epochs - epoch)))
        if stop.requested():
            out.saver.wait()
            raise Interrupted(stop.signum, out.last)


def fit_epoch(parts: Assembly, progress: Progress, epoch: int, *, out: Outputs, stop: StopOnSignal) -> None:
    """Train one epoch, validate, record, checkpoint."""
    began = time.perf_counter()
    if progress.step == 0 or progress.epoch_lr is None:  # an epoch resumed midway began at its stored rate
        progress.epoch_lr = current_lr(parts.optimizer)
    lr = progress.epoch_lr
    if progress.step == 0:  # not for an epoch resumed midway: its hook ran before the stop
        parts.on_epoch_start(epoch)
    with out.clock.phase(TRAINING):
        trained = train_epoch(parts, progress, epoch, out=out, stop=stop)
    with out.clock.phase(VALIDATION):
        val = evaluate(parts.net, parts.loaders.val, objective=parts.objective, runtime=parts.runtime,
                       desc=f"epoch {epoch}/{parts.cfg.trainer.epochs} val")
    row = {**pass_tags(TRAIN, trained), **pass_tags(VAL, val), LR: lr,
           **{name: trained[name] for name in (GRAD_NORM_MEAN, GRAD_NORM_MAX, SAMPLES_PER_S) if name in trained},
           EPOCH_S: time.perf_counter() - began}
    global_step = epoch * len(parts.loaders.train)
    out.tracker.scalars({**row, EPOCH: epoch}, global_step)
    if "confusion" in val:  # each class's recall: in TensorBoard, not the history (a class count of scalars)
        out.tracker.scalars(per_class_tags(VAL, per_class_accuracy(val["confusion"])), global_step)
    parts.schedule.after_epoch(row)
    # checkpoint (metrics are summed over ranks, so every rank agrees on `improved`)
    if not weights_are_finite(parts.model):
        raise NonFinite("weights", "nan or inf", len(parts.loaders.train))
    best = monitor_for(parts.cfg.data)
    improved = best.improved(row[best.tag], progress.best_value)
    if improved:
        progress.best_value, progress.best_epoch = row[best.tag], epoch
    progress.epoch, progress.step, progress.partial, progress.global_step = epoch, 0, None, global_step
    progress.history = [*progress.history, {"epoch": epoch, **row}]
    with out.clock.phase(CHECKPOINTS):  # written while the next epoch trains
        checkpoint.save_run(parts, progress, out.last, *([out.best] if improved else []), saver=out.saver)


def epoch_line(row: Mapping[str, float], epochs: int, *, left_s: float) -> str:
    """The log line of a finished epoch: its losses and accuracy (or RMSE), rate, speed and the time left."""
    shown = ACC if tag(ACC, TRAIN) in row else RMSE
    left = f", {duration(left_s)} left" if row["epoch"] < epochs else ""
    return (f"epoch {row['epoch']}/{epochs}  train loss {row[tag(LOSS, TRAIN)]:.4f} {shown} "
            f"{row[tag(shown, TRAIN)]:.4f}  val loss {row[tag(LOSS, VAL)]:.4f} {shown} {row[tag(shown, VAL)]:.4f}  "
            f"lr {row[LR]:.3g}  {row[SAMPLES_PER_S]:.0f} samples/s, {row[EPOCH_S]:.2f} s/epoch{left}")


def train_epoch(parts: Assembly, progress: Progress, epoch: int, *, out: Outputs,
                stop: StopOnSignal) -> dict[str, float]:
    """The epoch's training steps from where `progress` stands; returns its {LOSS, ACC, gradient norms,
    SAMPLES_PER_S}. A signal mid-epoch saves the step reached in last.pt and raises Interrupted."""
    steps = len(parts.loaders.train)
    steps_before = (epoch - 1) * steps
    metrics = parts.objective.new_metrics(parts.runtime.device, evaluation=False)
    if progress.partial is not None:
        metrics.load_state_dict(progress.partial)
    seen, began = metrics.count, time.perf_counter()
    step = train_one_epoch(
        parts.train_net, epoch_batches(parts.loaders.train, parts.cfg.seed, epoch, skip=progress.step),
        objective=parts.objective, optimizer=parts.optimizer, schedule=parts.schedule, metrics=metrics,
        runtime=parts.runtime, start_step=progress.step, total_steps=steps, step_offset=steps_before,
        desc=f"epoch {epoch}/{parts.cfg.trainer.epochs} train", log_every=parts.cfg.trainer.log_every_n_steps,
        on_log=lambda at, values: out.tracker.scalars(values, at), stop=stop, clip=parts.cfg.trainer.gradient_clip_val)
    if step < steps:  # a signal arrived mid-epoch: save where we are and stop
        progress.step, progress.global_step, progress.partial = step, steps_before + step, metrics.state_dict()
        with out.clock.phase(CHECKPOINTS):
            if weights_are_finite(parts.model):
                checkpoint.save_run(parts, progress, out.last, saver=out.saver)
            out.saver.wait()
        raise Interrupted(stop.signum, out.last)
    # every rank trained as many samples in the same time
    samples = (metrics.count - seen) * distributed.world_size()
    trained = metrics.compute()
    check_finite("training loss", trained[LOSS], step)
    return {**trained, SAMPLES_PER_S: samples / max(time.perf_counter() - began, 1e-9)}


def test_best(parts: Assembly, progress: Progress, *, out: Outputs) -> dict:
    """Evaluate best.pt on the test split, draw its pictures and log it with the run's hyperparameters, at the run's
    last global step."""
    with out.clock.phase(CHECKPOINTS):
        out.saver.wait()
    distributed.wait_for_main()  # rank 0 wrote best.pt
    with out.clock.phase(TESTING):
        parts.model.load_state_dict(checkpoint.load(out.best)["model"])
        test = evaluate(parts.net, parts.loaders.test, objective=parts.objective, runtime=parts.runtime,
                        desc="test", keep_outputs=True)
    best = monitor_for(parts.cfg.data)
    out.tracker.scalars({**pass_tags(TEST, test), best.best_key: progress.best_value}, progress.global_step)
    if "confusion" in test:
        out.tracker.scalars(per_class_tags(TEST, per_class_accuracy(test["confusion"])), progress.global_step)
    with out.clock.phase(PICTURES):
        draw_test(parts, test, out=out, step=progress.global_step)
    values, swept = job_hparams(parts.cfg)
    out.tracker.hparams(values, metric_columns(best), swept=swept)
    return test


def draw_test(parts: Assembly, test: dict, *, out: Outputs, step: int) -> None:
    """The test split's pictures: the confusion matrix, the reliability diagram (also reliability.png) and the top
    losses (top_losses.csv, and top_losses.png for images), sent to the painter as soon as their data are known."""
    from trainer.run.figures import confusion_figure, predictions_figure, reliability_figure

    if "confusion" not in test:  # regression: predictions against targets instead
        predictions = parts.objective.predict(test["logits"].float())
        out.tracker.picture("predictions/test", predictions_figure, {
            "predictions": predictions.numpy(), "targets": test["labels"].numpy(), "title": "test split",
            "r2": test[R2]}, step, save_as="predictions.png")
        top_losses.record(parts, test, tracker=out.tracker, step=step)
        return
    out.tracker.picture("confusion/test", confusion_figure, {"confusion": test["confusion"].numpy(),
                                                             "title": "test split", "names": parts.classes}, step)
    out.tracker.picture("reliability/test", reliability_figure, {"calibration": test["calibration"],
                                                                 "title": "test split", "ece": test[ECE]},
                        step, save_as="reliability.png")
    top_losses.record(parts, test, tracker=out.tracker, step=step)


def final_metrics(cfg: DictConfig, progress: Progress, test: dict, *, wall_time_s: float) -> dict[str, object]:
    """metrics.json of a training run."""
    norms = [row[GRAD_NORM_MAX] for row in progress.history if GRAD_NORM_MAX in row]
    classes = {CALIBRATION: test["calibration"], PER_CLASS_ACC: per_class_accuracy(test["confusion"])} if (
        "confusion" in test) else {}
    stopping = EarlyStopping.of(cfg)
    stopped = {} if stopping.patience is None else {
        STOPPED_EPOCH: progress.epoch if progress.epoch < cfg.trainer.epochs else None}
    return {**pass_results(TEST, test), **classes,
            monitor_for(cfg.data).best_key: progress.best_value, BEST_EPOCH: progress.best_epoch,
            EPOCHS: cfg.trainer.epochs, **stopped, result_key(TRAIN, LOSS): progress.history[-1][tag(LOSS, TRAIN)],
            WALL_TIME: round(wall_time_s, 3),
            MAX_GRAD_NORM: max(norms, default=None), HISTORY: progress.history, **(progress.chosen or {})}


def with_values(cfg: DictConfig, values: dict) -> DictConfig:
    """A copy of the config with {dotted key: value} set (the config itself when there is nothing to set)."""
    if not values:
        return cfg
    cfg = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg

