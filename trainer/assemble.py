"""One assembly of a run: a composed config becomes everything a run needs (data, model, objective, loaders,
optimizer, schedule and the runtime: device, precision, memory format). Training, `mode=eval` and the benchmarks
all go through `assemble`, so a setting means the same everywhere.
"""
import copy
import random
from dataclasses import dataclass

import numpy as np
import torch
import yaml
from hydra.utils import get_object
from omegaconf import OmegaConf

from trainer import distributed
from trainer.config import build, config_dir, option_of
from trainer.data import (Splits, augmented, cache_splits, channel_statistics, channel_values, check_settings,
                          check_splits, count_classes, labels_of, make_loader, normalized, target_statistics,
                          with_label_noise)
from trainer.device import Runtime, build_runtime
from trainer.errors import UserError, first_line
from trainer.logs import log
from trainer.metrics import CLASSIFICATION, MAE, R2, REGRESSION, RMSE
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
    cfg: object            # the composed config, with what the data decided (with_data_facts) filled in
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
    check_task(cfg)
    runtime = build_runtime(cfg.trainer, cfg.data.shape)
    seed_everything(cfg.seed)
    cfg, splits = build_data(cfg, for_training=for_training)
    model = build(cfg.model, "model").to(runtime.device)
    objective = build(cfg.loss, "loss").to(runtime.device)
    check_model_fits_data(model, objective, splits, runtime.device, shape=list(cfg.data.shape),
                          classifies=cfg.data.get("task", CLASSIFICATION) == CLASSIFICATION,
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


# --- the data stage -----------------------------------------------------------------------------------------------


def build_data(cfg, *, for_training):
    """The splits a run needs, and the config with what the data decided filled in. In order: the image size a
    pretrained model expects, the source, the checks, data.cache, data.normalize, data.label_noise and the source's
    augmentation (trainer/data.py does each step the same way for every source). Only private random generators are
    used, so the model's initialisation that follows is the same whatever the data stage did."""
    check_settings(cfg.data)
    model_class = class_of(cfg.model)
    cfg = with_data_facts(cfg, image_size=expected_image_size(cfg, model_class))
    splits = build(cfg.data.source, "data", seed=cfg.seed)
    classifies = cfg.data.get("task", CLASSIFICATION) == CLASSIFICATION
    count = count_classes(cfg.data.num_classes, splits) if classifies else cfg.data.num_classes
    cfg = with_data_facts(cfg, num_classes=count, image_size=splits.image_size)
    names = ("train", "val", "test") if for_training else ("test",)
    check_splits(splits, names, classifies=classifies)
    if not classifies and for_training:
        cfg = with_data_facts(cfg, target_stats=target_statistics(splits))
        check_targets_fit_loss(cfg, splits)
    splits = cache_splits(splits, cfg.data, names=names)
    values = normalization(cfg, splits, model_class)
    if values is not None:
        cfg = with_data_facts(cfg, mean=values[0], std=values[1])
        splits = normalized(splits, *values)
    if for_training:
        splits = with_label_noise(splits, cfg.data.get("label_noise", 0), num_classes=cfg.data.num_classes,
                                  seed=cfg.seed)
    return cfg, augmented(splits)


def with_data_facts(cfg, **facts):
    """A copy of the config with what the data decided filled in where the config leaves it null: data.num_classes,
    data.image_size (and so data.shape), data.mean and data.std. The model and loss configs read data.shape and
    data.num_classes by interpolation, and checkpoints store the filled-in values. The caller's config is left as
    it was."""
    missing = {key: value for key, value in facts.items() if value is not None and cfg.data.get(key, 0) is None}
    if not missing:
        return cfg
    cfg = copy.deepcopy(cfg)
    for key, value in missing.items():
        cfg.data[key] = value
    return cfg


def class_of(cfg_model):
    """The class a model config builds, for the hooks it offers before it is built (trainer/models.py lists them);
    None when it cannot be found (building the model then says why)."""
    try:
        return get_object(cfg_model._target_)
    except Exception:  # an unknown target: build() reports it, in one sentence
        return None


def expected_image_size(cfg, model_class):
    """data.image_size=null with a model whose weights expect an image size (a pretrained network's `input_size`):
    that size, before anything is decoded. Otherwise None: the source decodes the images at their own size."""
    hook = getattr(model_class, "input_size", None)
    if hook is None or cfg.data.get("image_size", 0) is not None:
        return None
    size = hook(cfg.model)
    log.info(f"data.image_size=null: {size} px, the size the model's weights were trained at")
    return size


def normalization(cfg, splits, model_class):
    """data.normalize: the per-channel (mean, std) the data stage standardises inputs with, or None. They are
    data.mean/data.std, or with null the training split's statistics. A model that normalises its own input
    (`normalizes_input`: a pretrained network, with its weights' values) gets the images as decoded, so it sees
    them normalised once; data.mean/data.std given for it would normalise them twice."""
    data = cfg.data
    if getattr(model_class, "normalizes_input", False):
        if data.get("mean") is not None:
            raise UserError(f"data.mean={data.mean} and data.std={data.std} would normalise the images a second time: "
                            "a pretrained model normalises them itself, with its weights' own mean and std; set "
                            "data.mean=null data.std=null")
        log.info("data.normalize: the pretrained model normalises its input itself, with its weights' mean and std")
        return None
    if not data.get("normalize", False):
        return None
    if data.get("mean") is None:
        mean, std = channel_statistics(splits.train, num_workers=data.num_workers, seed=cfg.seed)
        source = "the training split's"
    else:
        mean, std = (channel_values(data[key], f"data.{key}", data.shape[0]) for key in ("mean", "std"))
        source = "data.mean and data.std"
    rounded = lambda values: "[" + ", ".join(f"{v:.3g}" for v in values) + "]"
    log.info(f"data.normalize=true: inputs standardised with per-channel mean {rounded(mean)} and std "
             f"{rounded(std)} ({source})")
    return mean, std


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


# --- the task: which losses fit the data ----------------------------------------------------------------------------


def check_task(cfg):
    """Before anything is built: the loss fits the data's task (a classification loss on regression data, or a
    regression-only loss on classification data, is one sentence naming both), and label noise is for classes."""
    task = cfg.data.get("task", CLASSIFICATION)
    if task not in (CLASSIFICATION, REGRESSION):
        raise UserError(f"data.task={task} is not known: use data.task=classification or data.task=regression")
    if cfg.loss.get(TASK_KEYS[task]) is None:
        loss, data = option_name("loss", cfg.loss), option_name("data", cfg.data)
        raise UserError(f"loss={loss} does not fit {task} data, and data={data} is a {task} set (data.task={task}): "
                        f"use one of {', '.join(f'loss={name}' for name in losses_for(task))}")
    if task == REGRESSION and cfg.data.get("best", RMSE) not in (RMSE, MAE, R2):
        raise UserError(f"data.best={cfg.data.best} is not a regression metric: use data.best=rmse, data.best=mae "
                        "(lowest is best) or data.best=r2 (highest)")
    if task == REGRESSION and cfg.data.get("label_noise", 0):
        raise UserError(f"data.label_noise={cfg.data.label_noise} replaces class labels, and data="
                        f"{option_name('data', cfg.data)} is a regression set: leave data.label_noise=0")


# the key of a loss config that says how it treats each task (null: it does not fit that task)
TASK_KEYS = {CLASSIFICATION: "input", REGRESSION: "regression"}


def losses_for(task):
    """The loss options of conf/loss that fit a task."""
    return [path.stem for path in sorted((config_dir() / "loss").glob("*.yaml"))
            if (yaml.safe_load(path.read_text()) or {}).get(TASK_KEYS[task]) is not None]


def option_name(group, node):
    return option_of(group, OmegaConf.to_container(node)) or f"(your {group})"


def check_targets_fit_loss(cfg, splits):
    """A loss in log(1 + y) space (msle) needs targets of 0 or more."""
    if cfg.loss.get("regression") == "log1p" and bool((labels_of(splits.train) < 0).any()):
        low = labels_of(splits.train).min().item()
        raise UserError(f"loss={option_name('loss', cfg.loss)} takes log(1 + target), and data="
                        f"{option_name('data', cfg.data)} has training targets down to {low:.3g}: use loss=mse, "
                        "loss=l1 or loss=huber for targets that can be negative")


def check_model_fits_data(model, objective, splits, device, *, shape, classifies=True, fix=HEAD_FIX["training"]):
    """Run one tiny batch and check the labels, so a mismatch fails here in one sentence, not deep in torch
    (on CUDA an out-of-range label is an opaque device-side assert). `shape`: data.shape, which the model was
    built for."""
    x, y = next(iter(make_loader(splits.train, batch_size=2, shuffle=False)))
    if list(x.shape[1:]) != shape:  # the config says one shape (a data.shape override) and the data hold another
        raise UserError(f"data.shape={shape} does not describe the data, whose samples are {list(x.shape[1:])}: leave "
                        "data.shape as the data option sets it (change data.channels or data.image_size where the "
                        "data option has them)")
    logits = probe(model, x.to(device))
    if logits.dim() != 2:
        raise UserError(f"the model returns logits of shape {list(logits.shape)}, not [batch, classes]: check model")
    num_classes = logits.shape[1]
    if not classifies:
        check_regression_outputs(logits, y, objective, device)
        return
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


def check_regression_outputs(outputs, targets, objective, device):
    if outputs.shape[1:] != targets.shape[1:]:
        raise UserError(f"the model returns {outputs.shape[1]} outputs per sample but the data have "
                        f"{list(targets.shape[1:])} targets: set data.num_classes={targets.shape[-1]} (for regression, "
                        "the number of targets)")
    with torch.no_grad():
        objective(outputs, targets.to(device))


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
