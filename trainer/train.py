"""A run, top to bottom: check the config, build data, model, loss and optimizer, fit, test the best checkpoint."""
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from trainer import checkpoint, distributed
from trainer.config import build, validate
from trainer.data import Splits, epoch_batches, labels_of, make_loader, resolve_num_classes
from trainer.device import resolve_device
from trainer.errors import UserError, first_line
from trainer.interrupt import Interrupted, StopOnSignal
from trainer.loop import NonFiniteLoss, RunningMetrics, evaluate, train_one_epoch
from trainer.optim import build_optimizer, build_schedule, current_lr
from trainer.precision import Precision
from trainer.speed import memory_format, prepare_model
from trainer.tracking import Tracker, confusion_figure, job_hparams, per_class_accuracy, write_json
from trainer.transfer import cache_features, fine_tuning


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Loaders:
    train: object
    val: object
    test: object


def build_loaders(splits: Splits, cfg_data, seed, device):
    pin = device.type == "cuda"  # pinned host memory lets the copy to the GPU run asynchronously
    shard = {"rank": distributed.rank(), "world_size": distributed.world_size()}
    make = lambda dataset, shuffle: make_loader(dataset, cfg_data.batch_size, shuffle, cfg_data.num_workers, seed, pin,
                                                device, **shard)
    return Loaders(train=make(splits.train, True), val=make(splits.val, False), test=make(splits.test, False))


def check_model_fits_data(model, objective, splits, device):
    """Run one tiny batch and check the labels, so a mismatch fails here in one sentence, not deep in torch
    (on CUDA an out-of-range label is an opaque device-side assert)."""
    x, y = next(iter(make_loader(splits.train, 2, False, 0, 0)))
    was_training = model.training
    model.eval()  # a probe must not move BatchNorm statistics or draw dropout's random numbers
    try:
        with torch.no_grad():
            logits = model(x.to(device))
    except (RuntimeError, ValueError) as error:
        raise UserError(f"the model cannot take samples of data.shape={list(x.shape[1:])} ({first_line(error)}): "
                        "check data.shape and the model's settings") from None
    model.train(was_training)
    if logits.dim() != 2:
        raise UserError(f"the model returns logits of shape {list(logits.shape)}, not [batch, classes]: check model")
    num_classes = logits.shape[1]
    for name, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        labels = labels_of(dataset)
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise UserError(
                f"the {name} split has labels from {int(labels.min())} to {int(labels.max())} but the model's head has "
                f"{num_classes} outputs: set data.num_classes={int(labels.max()) + 1} (labels must be 0..num_classes-1)"
            )
    try:
        with torch.no_grad():
            objective(logits, y.to(device))
    except (RuntimeError, ValueError) as error:
        raise UserError(f"the loss cannot compare the model's output with the labels ({error}): check loss") from None


def build_run(cfg, device):
    """Data, model and objective for a config; shared by training and evaluation."""
    splits = build(cfg.data.source, "data", seed=cfg.seed)
    resolve_num_classes(cfg.data, splits)  # data.num_classes: null is read from the dataset before the model is built
    model = build(cfg.model, "model").to(device)
    objective = build(cfg.loss, "loss").to(device)
    check_model_fits_data(model, objective, splits, device)
    return splits, model, objective


def fresh_progress():
    """Where a run stands; saved in every checkpoint so a resumed run carries on from exactly there."""
    return {"epoch": 0, "step": 0, "global_step": 0, "partial": None, "best": {"val_acc": -1.0, "epoch": 0},
            "history": []}


@dataclass
class Run:
    """What the training phases share, built once by `train`."""
    cfg: object
    run_dir: Path
    model: object        # what is saved, evaluated and tested
    net: object          # what runs forward in evaluation: the model, or its head on cached backbone features
    train_net: object    # what trains: `net`, wrapped in DistributedDataParallel under torchrun
    objective: object
    optimizer: object
    schedule: object
    start_epoch: object  # the epoch-start hook (unfreezing a backbone)
    loaders: Loaders
    device: object
    precision: Precision
    memory_format: object
    tracker: Tracker
    config: dict         # the resolved config, stored in every checkpoint


def checkpoint_state(run, progress):
    scaler = run.precision.scaler
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.schedule.state_dict(), "scaler": None if scaler is None else scaler.state_dict(),
            "epoch": progress["epoch"], "global_step": progress["global_step"], "best": progress["best"],
            "progress": progress, "rng": checkpoint.rng_state(), "config": run.config, "versions": checkpoint.versions()}


def save_checkpoint(run, progress, *paths):
    if distributed.is_main():  # under torchrun only rank 0 writes
        state = checkpoint_state(run, progress)
        for path in paths:
            checkpoint.save(state, path)


RESUMABLE_SECTIONS = ("data", "model", "loss", "optimizer", "scheduler", "seed")


def differences(old, new, prefix=""):
    """Dotted keys whose values differ between two plain config containers."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new), key=str)
                for d in differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def check_resumable(stored, current, ckpt_path):
    """Refuse to continue a checkpoint with another model, data, loss, optimizer, schedule or seed."""
    changed = [d for section in RESUMABLE_SECTIONS for d in differences(stored.get(section), current.get(section),
                                                                         f"{section}.")
               if not (d[0] == "data.num_classes" and d[2] is None)]  # null: counted from the data, checked later
    if changed:
        key, old, new = changed[0]
        raise UserError(
            f"ckpt_path={ckpt_path} was trained with {key}={old}, not {new}: resume with the run's own overrides "
            f"(its .hydra/overrides.yaml); only trainer.* keys such as trainer.epochs may change"
        )


def refuse_to_overwrite(run_dir):
    if any((run_dir / "checkpoints").glob("*.pt")):
        raise UserError(
            f"{run_dir} already holds a run's checkpoints: resume it with ckpt_path={run_dir}/checkpoints/last.pt, "
            "or give this run its own folder (hydra.run.dir=...)"
        )


def restore(state, model, optimizer, schedule, precision, ckpt_path):
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"ckpt_path={ckpt_path} does not fit this model and optimizer ({first_line(error)})") from None
    schedule.load_state_dict(state["scheduler"])
    if precision.scaler is not None and state.get("scaler"):
        precision.scaler.load_state_dict(state["scaler"])
    checkpoint.restore_rng(state["rng"])  # last: building the model above consumed random numbers


def run_dir_of(cfg, new_dir):
    """Where a training run writes: a resumed run continues in its checkpoint's run dir (so the same TensorBoard
    run), any other in the new one Hydra made (also one whose ckpt_path does not exist: it fails there)."""
    if cfg.mode == "train" and cfg.ckpt_path and Path(cfg.ckpt_path).is_file():
        return Path(cfg.ckpt_path).resolve().parent.parent
    return Path(new_dir)


def train(cfg, run_dir):
    """Train (or resume from ckpt_path), validate every epoch, keep last.pt and best.pt, test best.pt;
    returns the final metrics."""
    validate(cfg)
    if cfg.mode == "eval":
        return evaluate_checkpoint(cfg, run_dir)
    started = time.perf_counter()
    resume = checkpoint.load(cfg.ckpt_path) if cfg.ckpt_path else None
    run_dir = run_dir_of(cfg, run_dir)
    if resume is not None:
        check_resumable(resume["config"], OmegaConf.to_container(cfg, resolve=True), cfg.ckpt_path)
    else:
        refuse_to_overwrite(run_dir)
    seed_everything(cfg.seed)
    device = distributed.local_device(resolve_device(cfg.trainer.device))
    precision, fmt = Precision(cfg.trainer.precision, device), memory_format(cfg.trainer.channels_last, cfg.data.shape)
    splits, model, objective = build_run(cfg, device)
    config = OmegaConf.to_container(cfg, resolve=True)  # after build_run, which may fill in data.num_classes
    # a frozen backbone's features are computed once; `net` is then the head that trains on them, else the model
    net, splits = cache_features(model, splits, cfg.data, device)
    loaders = build_loaders(splits, cfg.data, cfg.seed, device)
    optimizer = build_optimizer(cfg.optimizer, model)
    precision.check_optimizer(optimizer)
    prepare_model(model, fmt, cfg.trainer.compile)
    schedule = build_schedule(cfg.scheduler, optimizer, len(loaders.train), cfg.trainer.epochs)
    start_epoch = fine_tuning(model, optimizer, schedule, cfg.trainer.epochs)  # unfreezes at model.unfreeze_at_epoch
    progress = fresh_progress()
    if resume is not None:
        progress = resume["progress"]
        # replay the epoch-start hooks of the epochs already begun, so the optimizer has the groups it saved
        for begun in range(1, progress["epoch"] + 1 + (progress["step"] > 0)):
            start_epoch(begun)
        restore(resume, model, optimizer, schedule, precision, cfg.ckpt_path)
    # on resume, hide whatever the interrupted process logged after its last checkpoint
    tracker = Tracker(run_dir, purge_step=progress["global_step"] if resume is not None else None,
                      enabled=distributed.is_main())
    run = Run(cfg=cfg, run_dir=run_dir, model=model, net=net, train_net=distributed.wrap(net, device),
              objective=objective, optimizer=optimizer, schedule=schedule, start_epoch=start_epoch, loaders=loaders,
              device=device, precision=precision, memory_format=fmt, tracker=tracker, config=config)
    try:
        with StopOnSignal() as stop:
            fit(run, progress, stop)
        test = test_best(run, progress)
    except Exception as error:
        if "DataLoader worker" not in str(error):
            raise
        raise UserError(f"a DataLoader worker failed ({first_line(error)}): run with data.num_workers=0 to see the error "
                        "in the main process") from None
    finally:
        tracker.close()
    best, history = progress["best"], progress["history"]
    metrics = {"test/acc": test["acc"], "test/loss": test["loss"], "best/val_acc": best["val_acc"],
               "best/epoch": best["epoch"], "epochs": cfg.trainer.epochs, "train/loss": history[-1]["loss/train"],
               "test/per_class_acc": per_class_accuracy(test["confusion"]),
               "wall_time_s": round(time.perf_counter() - started, 3), "history": history}
    if not distributed.is_main():  # under torchrun only rank 0 writes
        return metrics
    write_json(metrics, run_dir / "metrics.json")
    print(f"test acc {test['acc']:.4f}  loss {test['loss']:.4f}  (best val acc {best['val_acc']:.4f} "
          f"at epoch {best['epoch']})  -> {run_dir}")
    return metrics


def fit(run, progress, stop):
    """The epochs from where `progress` stands to trainer.epochs; updates `progress` and the checkpoints."""
    cfg, loaders, device = run.cfg, run.loaders, run.device
    epochs, steps_per_epoch = cfg.trainer.epochs, len(loaders.train)
    show = cfg.trainer.progress and distributed.is_main()
    last, best_path = run.run_dir / "checkpoints" / "last.pt", run.run_dir / "checkpoints" / "best.pt"
    for epoch in range(progress["epoch"] + 1, epochs + 1):
        steps_before = (epoch - 1) * steps_per_epoch
        metrics = RunningMetrics(device)
        if progress["partial"] is not None:
            metrics.load_state_dict(progress["partial"])
        if progress["step"] == 0:  # not for an epoch resumed midway: its hook ran before the stop
            run.start_epoch(epoch)
        lr = current_lr(run.optimizer)
        # train
        batches = epoch_batches(loaders.train, cfg.seed, epoch, skip=progress["step"])
        bar = {"desc": f"epoch {epoch}/{epochs} train", "total": steps_per_epoch, "initial": progress["step"],
               "disable": not show}
        on_step = lambda step, value: run.tracker.scalars({"loss/train_step": value}, steps_before + step)
        try:
            step = train_one_epoch(run.train_net, run.objective, run.optimizer, batches, device, run.schedule,
                                   metrics, on_step, cfg.trainer.log_every_n_steps, stop, bar, run.precision,
                                   run.memory_format)
            if step < steps_per_epoch:  # a signal arrived mid-epoch: save where we are and stop
                progress.update(step=step, global_step=steps_before + step, partial=metrics.state_dict())
                if checkpoint.weights_are_finite(run.model):
                    save_checkpoint(run, progress, last)
                raise Interrupted(stop.signum, last)
            fit_metrics = metrics.compute()
            if not math.isfinite(fit_metrics["loss"]):
                raise NonFiniteLoss(step, fit_metrics["loss"])
        except NonFiniteLoss as bad:
            kept = f"{last} keeps epoch {progress['epoch']}" if last.exists() else "no checkpoint was written"
            raise UserError(f"the training loss became {bad.value} in epoch {epoch} by step {bad.step} of "
                            f"{steps_per_epoch} (learning rate {current_lr(run.optimizer):g}): lower optimizer.lr or "
                            f"pick another loss; {kept}") from None
        # validate
        val = evaluate(run.net, run.objective, loaders.val, device, show, f"epoch {epoch}/{epochs} val",
                       run.precision, run.memory_format)
        epoch_metrics = {"loss/train": fit_metrics["loss"], "acc/train": fit_metrics["acc"], "loss/val": val["loss"],
                         "acc/val": val["acc"], "lr": lr}
        run.tracker.scalars(epoch_metrics, epoch)
        run.schedule.after_epoch(epoch_metrics)
        if distributed.is_main():
            print(f"epoch {epoch}/{epochs}  train loss {fit_metrics['loss']:.4f} acc {fit_metrics['acc']:.4f}  "
                  f"val loss {val['loss']:.4f} acc {val['acc']:.4f}  lr {lr:.3g}")
        # checkpoint (metrics are summed over ranks, so every rank agrees on `improved`)
        improved = val["acc"] > progress["best"]["val_acc"]
        if improved:
            progress["best"] = {"val_acc": val["acc"], "epoch": epoch}
        progress.update(epoch=epoch, step=0, global_step=steps_before + steps_per_epoch, partial=None,
                        history=[*progress["history"], {"epoch": epoch, **epoch_metrics}])
        if not checkpoint.weights_are_finite(run.model):
            raise UserError(f"the weights stopped being finite numbers in epoch {epoch}: lower optimizer.lr; "
                            f"{last} keeps epoch {epoch - 1}")
        save_checkpoint(run, progress, last, *([best_path] if improved else []))
        if stop.requested():
            raise Interrupted(stop.signum, last)


def test_best(run, progress):
    """Evaluate best.pt on the test split and log it with the run's hyperparameters."""
    cfg, epochs = run.cfg, run.cfg.trainer.epochs
    distributed.wait_for_main()  # rank 0 wrote best.pt
    run.model.load_state_dict(checkpoint.load(run.run_dir / "checkpoints" / "best.pt")["model"])
    test = evaluate(run.net, run.objective, run.loaders.test, run.device,
                    cfg.trainer.progress and distributed.is_main(), "test", run.precision, run.memory_format)
    final = {"loss/test": test["loss"], "acc/test": test["acc"], "best/val_acc": progress["best"]["val_acc"]}
    run.tracker.scalars(final, epochs)
    run.tracker.figure("confusion/test", confusion_figure(test["confusion"], "test split"), epochs)
    run.tracker.hparams(job_hparams(cfg), list(final))
    return test


def evaluate_checkpoint(cfg, run_dir):
    """mode=eval: rebuild data, model and loss from the config stored in the checkpoint and test it."""
    run_dir = Path(run_dir)
    state = checkpoint.load(cfg.ckpt_path)
    stored = OmegaConf.create(state["config"])
    seed_everything(stored.seed)
    device = distributed.local_device(resolve_device(cfg.trainer.device))
    splits, model, objective = build_run(stored, device)
    model.load_state_dict(state["model"])
    loader = make_loader(splits.test, cfg.data.batch_size, False, cfg.data.num_workers, stored.seed)
    test = evaluate(model, objective, loader, device, cfg.trainer.progress, "test")
    metrics = {"test/acc": test["acc"], "test/loss": test["loss"], "ckpt_path": str(cfg.ckpt_path),
               "epoch": state["epoch"]}
    if not distributed.is_main():  # under torchrun every rank tests the whole split; rank 0 writes
        return metrics
    tracker = Tracker(run_dir)
    tracker.scalars({"loss/test": test["loss"], "acc/test": test["acc"]}, state["epoch"])
    tracker.close()
    write_json(metrics, run_dir / "metrics.json")
    print(f"test acc {test['acc']:.4f}  loss {test['loss']:.4f}  ({cfg.ckpt_path}) -> {run_dir}")
    return metrics
