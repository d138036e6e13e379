"""One assembly of a run: a composed config becomes everything a run needs (data, model, objective, loaders,
optimizer, schedule and the runtime: device, precision, memory format). Training, `mode=eval` and the benchmarks
all go through `assemble`, so a setting means the same everywhere.
"""
import copy
import random
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import OmegaConf

from trainer import distributed
from trainer.config import build
from trainer.data import Splits, count_classes, labels_of, make_loader
from trainer.device import Runtime, build_runtime
from trainer.errors import UserError, first_line
from trainer.optim import build_optimizer, build_schedule
from trainer.speed import prepare_model


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Loaders:
    train: object
    val: object
    test: object


@dataclass
class Assembly:
    """What a run is made of. `model` is what is saved and restored; `net` is what runs forward (the model, or its
    head on features a frozen backbone computed once); `train_net` is `net` as it trains (wrapped in
    DistributedDataParallel under torchrun)."""
    cfg: object            # the composed config, with what the data decides (data.num_classes) filled in
    config: dict           # the same as plain containers: stored in every checkpoint, compared on resume
    classes: list          # class names, when the dataset has them
    splits: Splits
    model: object
    net: object
    train_net: object
    objective: object
    loaders: Loaders
    optimizer: object
    schedule: object
    runtime: Runtime
    epoch_hook: object     # the model's epoch-start hook, or None

    def on_epoch_start(self, epoch):
        if self.epoch_hook is not None:
            self.epoch_hook(epoch)


def assemble(cfg, *, for_training=True):
    """Build a run from a composed config. Random numbers are drawn in a fixed order from `seed`, so the same
    config always gives the same initial weights and data order. `for_training=False` (mode=eval) builds what
    testing needs: no optimizer or schedule, and the model's training view (a feature cache) of the test split only.
    """
    runtime = build_runtime(cfg.trainer, cfg.data.shape)
    seed_everything(cfg.seed)
    splits = build(cfg.data.source, "data", seed=cfg.seed)
    cfg = with_class_count(cfg, count_classes(cfg.data.num_classes, splits))
    model = build(cfg.model, "model").to(runtime.device)
    objective = build(cfg.loss, "loss").to(runtime.device)
    check_model_fits_data(model, objective, splits, runtime.device,
                          fix=HEAD_FIX["training" if for_training else "evaluation"])
    net, view = training_view(model, splits if for_training else test_only(splits), cfg.data, runtime.device)
    loaders = build_loaders(view, cfg.data, seed=cfg.seed, device=runtime.device)
    optimizer = build_optimizer(cfg.optimizer, model) if for_training else None
    runtime.precision.check_optimizer(optimizer)
    prepare_model(model, runtime.memory_format, cfg.trainer.compile)
    schedule = build_schedule(cfg.scheduler, optimizer, steps_per_epoch=len(loaders.train),
                              epochs=cfg.trainer.epochs) if for_training else None
    hook = getattr(model, "epoch_hook", None) if for_training else None
    return Assembly(cfg=cfg, config=OmegaConf.to_container(cfg, resolve=True), classes=splits.classes, splits=splits,
                    model=model, net=net, train_net=distributed.wrap(net, runtime.device) if for_training else net,
                    objective=objective, loaders=loaders, optimizer=optimizer, schedule=schedule, runtime=runtime,
                    epoch_hook=hook and hook(optimizer, schedule, epochs=cfg.trainer.epochs))


def test_only(splits):
    """The test split alone (train and val None): what evaluating a checkpoint needs."""
    return Splits(train=None, val=None, test=splits.test, classes=splits.classes)


def with_class_count(cfg, num_classes):
    """A copy of the config whose data.num_classes is the dataset's count; the model and loss configs read it by
    interpolation. The caller's config is left as it was."""
    if cfg.data.num_classes == num_classes:
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.data.num_classes = num_classes
    return cfg


def training_view(model, splits, cfg_data, device):
    """The module the loop runs and the splits it runs on: the model's own `training_view` hook (a feature cache),
    or the model and the splits as they are."""
    view = getattr(model, "training_view", None)
    if view is None:
        return model, splits
    return view(splits, batch_size=cfg_data.batch_size, num_workers=cfg_data.num_workers,
                augment=cfg_data.get("augment", False), device=device)


def build_loaders(splits, cfg_data, *, seed, device):
    """A loader per split (None for a split left out)."""
    pin = device.type == "cuda"  # pinned host memory lets the copy to the GPU run asynchronously
    make = lambda dataset, shuffle: None if dataset is None else make_loader(
        dataset, batch_size=cfg_data.batch_size, shuffle=shuffle, num_workers=cfg_data.num_workers, seed=seed,
        pin_memory=pin, device=device, rank=distributed.rank(), world_size=distributed.world_size())
    return Loaders(train=make(splits.train, True), val=make(splits.val, False), test=make(splits.test, False))


# what to do when labels exceed the model's outputs: a new run sizes its head by data.num_classes; a trained one has
# its head already
HEAD_FIX = {"training": "set data.num_classes={needed} (labels must be 0..num_classes-1)",
            "evaluation": "the checkpoint's model has {outputs}: evaluate it on data of its own classes"}


def check_model_fits_data(model, objective, splits, device, *, fix=HEAD_FIX["training"]):
    """Run one tiny batch and check the labels, so a mismatch fails here in one sentence, not deep in torch
    (on CUDA an out-of-range label is an opaque device-side assert)."""
    x, y = next(iter(make_loader(splits.train, batch_size=2, shuffle=False)))
    logits = probe(model, x.to(device))
    if logits.dim() != 2:
        raise UserError(f"the model returns logits of shape {list(logits.shape)}, not [batch, classes]: check model")
    num_classes = logits.shape[1]
    for name, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        labels = labels_of(dataset)
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            outputs = f"{num_classes} outputs"
            raise UserError(
                f"the {name} split has labels from {int(labels.min())} to {int(labels.max())} but the model's head has "
                f"{outputs}: " + fix.format(needed=int(labels.max()) + 1, outputs=outputs)
            )
    try:
        with torch.no_grad():
            objective(logits, y.to(device))
    except (RuntimeError, ValueError) as error:
        raise UserError(f"the loss cannot compare the model's output with the labels ({error}): check loss") from None


def probe(model, x):
    """The model's output for `x`, in eval mode: a probe must not move BatchNorm statistics or draw dropout's
    random numbers."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except (RuntimeError, ValueError) as error:
        raise UserError(f"the model cannot take samples of data.shape={list(x.shape[1:])} ({first_line(error)}): "
                        "check data.shape and the model's settings") from None
    finally:
        model.train(was_training)
