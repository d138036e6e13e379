"""A run, top to bottom: check the config, build data, model, loss and optimizer, fit, test the best checkpoint."""
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from trainer import checkpoint, distributed
from trainer.config import validate
from trainer.data import Splits, labels_of, make_loader
from trainer.device import resolve_device
from trainer.errors import UserError
from trainer.loop import evaluate, train_one_epoch
from trainer.optim import build_optimizer, build_schedule, current_lr
from trainer.precision import Precision
from trainer.speed import memory_format, prepare_model
from trainer.tracking import Tracker, write_json


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
    with torch.no_grad():
        logits = model(x.to(device))
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
    splits = instantiate(cfg.data.source, seed=cfg.seed)
    model = instantiate(cfg.model).to(device)
    objective = instantiate(cfg.loss).to(device)
    check_model_fits_data(model, objective, splits, device)
    return splits, model, objective


def train(cfg, run_dir):
    """Train, validate every epoch, keep last.pt and best.pt, test best.pt; returns the final metrics."""
    validate(cfg)
    if cfg.mode == "eval":
        return evaluate_checkpoint(cfg, run_dir)
    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    device = distributed.local_device(resolve_device(cfg.trainer.device))
    precision, fmt = Precision(cfg.trainer.precision, device), memory_format(cfg.trainer.channels_last, cfg.data.shape)
    splits, model, objective = build_run(cfg, device)
    loaders = build_loaders(splits, cfg.data, cfg.seed, device)
    optimizer = build_optimizer(cfg.optimizer, model)
    precision.check_optimizer(optimizer)
    model = prepare_model(model, fmt, cfg.trainer.compile)
    net = distributed.wrap(model, device)  # what trains; `model` is what is saved and evaluated
    main, progress = distributed.is_main(), cfg.trainer.progress and distributed.is_main()
    epochs = cfg.trainer.epochs
    schedule = build_schedule(cfg.scheduler, optimizer, len(loaders.train), epochs)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    tracker = Tracker(run_dir, enabled=main)
    best = {"val_acc": -1.0, "epoch": 0}
    history = []
    try:
        for epoch in range(1, epochs + 1):
            steps_before = (epoch - 1) * len(loaders.train)
            distributed.set_epoch(loaders.train, epoch)
            on_step = lambda step, value: tracker.scalars({"loss/train_step": value}, steps_before + step)
            # train
            lr = current_lr(optimizer)
            fit = train_one_epoch(net, objective, optimizer, loaders.train, device, schedule, on_step,
                                  cfg.trainer.log_every_n_steps, progress, f"epoch {epoch}/{epochs} train",
                                  precision, fmt)
            # validate
            val = evaluate(model, objective, loaders.val, device, progress, f"epoch {epoch}/{epochs} val",
                           precision, fmt)
            epoch_metrics = {"loss/train": fit["loss"], "acc/train": fit["acc"], "loss/val": val["loss"],
                             "acc/val": val["acc"], "lr": lr}
            tracker.scalars(epoch_metrics, epoch)
            history.append({"epoch": epoch, **epoch_metrics})
            schedule.after_epoch(epoch_metrics)
            if main:
                print(f"epoch {epoch}/{epochs}  train loss {fit['loss']:.4f} acc {fit['acc']:.4f}  "
                      f"val loss {val['loss']:.4f} acc {val['acc']:.4f}  lr {lr:.3g}")
            # checkpoint (metrics are summed over ranks, so every rank agrees on `improved`)
            improved = val["acc"] > best["val_acc"]
            if improved:
                best = {"val_acc": val["acc"], "epoch": epoch}
            if main:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": schedule.state_dict(), "epoch": epoch, "best": best, "config": resolved}
                checkpoint.save(state, run_dir / "checkpoints" / "last.pt")
                if improved:
                    checkpoint.save(state, run_dir / "checkpoints" / "best.pt")
        # test the best checkpoint
        distributed.wait_for_main()
        model.load_state_dict(checkpoint.load(run_dir / "checkpoints" / "best.pt")["model"])
        test = evaluate(model, objective, loaders.test, device, progress, "test", precision, fmt)
        tracker.scalars({"loss/test": test["loss"], "acc/test": test["acc"]}, epochs)
    finally:
        tracker.close()
    metrics = {"test/acc": test["acc"], "test/loss": test["loss"], "best/val_acc": best["val_acc"],
               "best/epoch": best["epoch"], "epochs": epochs, "train/loss": history[-1]["loss/train"],
               "history": history}
    if not main:
        return metrics
    write_json(metrics, run_dir / "metrics.json")
    print(f"test acc {test['acc']:.4f}  loss {test['loss']:.4f}  (best val acc {best['val_acc']:.4f} "
          f"at epoch {best['epoch']})  -> {run_dir}")
    return metrics


def evaluate_checkpoint(cfg, run_dir):
    """mode=eval: rebuild data, model and loss from the config stored in the checkpoint and test it."""
    run_dir = Path(run_dir)
    state = checkpoint.load(cfg.ckpt_path)
    stored = OmegaConf.create(state["config"])
    seed_everything(stored.seed)
    device = resolve_device(cfg.trainer.device)
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
