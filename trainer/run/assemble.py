"""One assembly of a run: a composed config becomes everything a run needs (data, model, objective, loaders,
optimizer, schedule and the runtime: device, precision, memory format). Training, `mode=eval`, the range test and the
benchmarks all go through `assemble`, so a setting means the same everywhere. It reads top to bottom: check the
task, prepare the data (one call), build model and loss, probe them with one batch, then loaders, optimizer and
schedule.
"""
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from trainer.config import build
from trainer.data import Splits, labels_of, make_loader, prepare_data, sampler_weights
from trainer.losses import check_targets_fit_loss, check_task
from trainer.metrics import CLASSIFICATION
from trainer.optim import Schedule, build_optimizer, build_schedule
from trainer.run.probe import HEAD_FIX, check_model_fits_data
from trainer.runtime import Runtime, build_runtime, distributed, prepare_model


def seed_everything(seed: int) -> None:
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
    cfg: DictConfig        # the composed config, with what the data decided (with_data_facts) filled in
    config: dict           # the same as plain containers: stored in every checkpoint, compared on resume
    classes: list | None   # class names, when the dataset has them
    splits: Splits
    model: nn.Module
    net: nn.Module
    train_net: nn.Module
    objective: nn.Module
    loaders: Loaders
    optimizer: torch.optim.Optimizer | None
    schedule: Schedule | None
    runtime: Runtime
    epoch_hook: Callable | None  # the model's epoch-start hook

    def on_epoch_start(self, epoch: int) -> None:
        if self.epoch_hook is not None:
            self.epoch_hook(epoch)


def assemble(cfg: DictConfig, *, for_training: bool = True, weights: dict | None = None) -> Assembly:
    """Build a run from a composed config. Random numbers are drawn in a fixed order from `seed`, so the same
    config always gives the same initial weights and data order. `for_training=False` (mode=eval) builds what
    testing needs: no optimizer or schedule, and the model's training view (a feature cache) of the test split only.
    `weights`: a checkpoint's model state, loaded as soon as the model is built, so that the training view (cached
    features) is computed by the trained model, not by the one it started from.

    Raises:
        UserError: any mistake in the config or the data, in one sentence naming the key, before any training.
    """
    task_known = cfg.data.get("task", CLASSIFICATION) is not None  # null: a table's target column decides it
    if task_known:
        check_task(cfg)
    runtime = build_runtime(cfg.trainer, cfg.data.shape or [])  # a table's shape is known once it is read
    seed_everything(cfg.seed)
    cfg, splits = prepare_data(cfg, for_training=for_training)
    if not task_known:
        check_task(cfg)
    if for_training and cfg.data.get("task", CLASSIFICATION) != CLASSIFICATION:
        check_targets_fit_loss(cfg, lowest_target=labels_of(splits.train).min().item())
    model = build(cfg.model, "model").to(runtime.device)
    if weights is not None:
        model.load_state_dict(weights)
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


def test_only(splits: Splits) -> Splits:
    """The test split alone (train and val None): what evaluating a checkpoint needs."""
    return Splits(train=None, val=None, test=splits.test, classes=splits.classes)


def training_view(model: nn.Module, splits: Splits, cfg_data: DictConfig, device: torch.device
                  ) -> tuple[nn.Module, Splits]:
    """The module the loop runs and the splits it runs on: the model's own `training_view` hook (a feature cache),
    or the model and the splits as they are."""
    view = getattr(model, "training_view", None)
    if view is None:
        return model, splits
    batch_size, workers = cfg_data.batch_size, cfg_data.num_workers
    return view(splits, read=lambda dataset: make_loader(dataset, batch_size=batch_size, shuffle=False,
                                                         num_workers=workers),
                augment=cfg_data.get("augment", False), device=device)


def build_loaders(splits: Splits, cfg_data: DictConfig, *, seed: int, device: torch.device) -> Loaders:
    """A loader per split (None for a split left out); the training split shuffled, or drawn by data.sampler."""
    pin = device.type == "cuda"  # pinned host memory lets the copy to the GPU run asynchronously
    make = lambda dataset, shuffle, weights=None: None if dataset is None else make_loader(
        dataset, batch_size=cfg_data.batch_size, shuffle=shuffle, num_workers=cfg_data.num_workers, seed=seed,
        pin_memory=pin, device=device, rank=distributed.rank(), world_size=distributed.world_size(), weights=weights)
    weights = None if splits.train is None else sampler_weights(cfg_data.get("sampler"), splits.train)
    return Loaders(train=make(splits.train, True, weights), val=make(splits.val, False),
                   test=make(splits.test, False))
