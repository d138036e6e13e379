"""Transfer learning: a torchvision classification network whose last Linear layer is replaced by a new head.

`TransferModel` is the one builder; conf/model/resnet18_transfer.yaml and vgg16_transfer.yaml are presets of it.
Any architecture torchvision lists works by name (`model.arch=mobilenet_v3_small`): the last nn.Linear it
registers is its output layer (`fc` for ResNet, `classifier[6]` for VGG). That layer becomes nn.Identity inside
`backbone`, so `backbone(x)` is the feature vector the new `head` reads.

The model carries what the training run does differently for it, as the hooks trainer/models/__init__.py describes:
the feature cache for a frozen backbone (`training_view`) and unfreezing at `model.unfreeze_at_epoch` (`epoch_hook`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn

from trainer.config.checks import check_auto_or_bool
from trainer.errors import UserError, first_line
from trainer.logs import log
from trainer.models.feature_cache import backbone_features, uses_feature_cache
from trainer.models.fine_tune import unfreeze
from trainer.models.weights import last_linear, load_network, preset_weights, reference_weights


def input_channels(network: nn.Module) -> int:
    first_conv = next((m for m in network.modules() if isinstance(m, nn.Conv2d)), None)
    return 3 if first_conv is None else first_conv.in_channels


class TransferModel(nn.Module):
    """prepare (channels, normalisation) -> backbone (the pretrained network minus its output layer) -> head.

    With `freeze_backbone` the backbone's parameters get no gradients (so the optimizer never sees them) and the
    backbone stays in eval mode across every `train()` call: BatchNorm running statistics never move and dropout
    is off, so the backbone is a fixed function of its input.

    Its inputs are images in [0, 1]: `prepare` normalises them with its weights' mean and std, so the data stage
    must not normalise them too (`normalizes_input`), and with data.image_size=null they come at the size its weights
    were trained at (`input_size`). Both are read from the class, before the data is decoded. `load_weights=False`
    (mode=eval and mode=predict, whose checkpoint holds every weight) builds the network without reading
    `weights`: a weights file need not exist any more, and nothing is downloaded.
    """
    normalizes_input = True

    @staticmethod
    def input_size(settings: Mapping) -> int:
        """The image side the weights were trained at (their transforms' crop size, 224 for ImageNet's): what
        data.image_size=null gives a transfer model. `settings`: the model config (arch, weights)."""
        weights = settings.get("weights", "DEFAULT")
        reference = (reference_weights(settings["arch"], weights)[0] if settings.get("load_weights", True)
                     else preset_weights(settings["arch"], weights))
        return reference.transforms().crop_size[0]

    def __init__(self, *, arch: str, in_shape: Sequence[int], num_classes: int, weights: str | None = "DEFAULT",
                 freeze_backbone: bool = True, unfreeze_at_epoch: int | None = None, backbone_lr_mult: float = 0.1,
                 cache_features: str | bool = "auto", load_weights: bool = True):
        super().__init__()
        check_settings(in_shape, freeze_backbone, unfreeze_at_epoch, cache_features)
        network, reference = load_network(arch, weights, load=load_weights)
        head_name, output_layer = last_linear(network, arch)
        network.set_submodule(head_name, nn.Identity())
        self.arch = arch
        self.backbone = network
        self.head = nn.Linear(output_layer.in_features, num_classes)
        # the normalisation the weights were trained with; derived from the config, so not part of the state dict
        preset = reference.transforms()
        self.register_buffer("mean", torch.tensor(preset.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(preset.std).view(1, -1, 1, 1), persistent=False)
        self.repeat_gray = check_channels(in_shape, input_channels(network), arch)
        self.unfreeze_at_epoch, self.backbone_lr_mult, self.cache_features = (
            unfreeze_at_epoch, backbone_lr_mult, cache_features)
        self.set_frozen(freeze_backbone)
        self.check_input_size(in_shape, output_layer.in_features)

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        self.backbone.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> TransferModel:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # frozen BatchNorm keeps its running statistics; dropout stays off
        return self

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat_gray:
            x = x.expand(-1, 3, -1, -1)  # grayscale repeated to the 3 channels the network was built for
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    # --- the hooks the run calls (trainer/models/__init__.py lists them) ---

    def training_view(self, splits: object, *, read: Callable, augment: bool, device: torch.device
                      ) -> tuple[nn.Module, object]:
        """With a frozen backbone whose input is not randomly augmented, the backbone gives the same output every
        epoch: compute it once per split, and train and evaluate only the head on it.

        `splits` is the run's trainer.data.Splits; `read(dataset)` gives a split's (x, y) batches in order. Returns
        (the module the loop runs, the splits it runs on): (self.head, feature splits) when caching, else (self,
        splits) unchanged. The head is part of the model, so checkpoints of the model hold the trained head.
        """
        if not uses_feature_cache(self, augment):
            return self, splits
        part = lambda dataset: None if dataset is None else backbone_features(self, read(dataset), device=device)
        return self.head, replace(splits, train=part(splits.train), val=part(splits.val), test=part(splits.test),
                                  image_size=None, augment=None)

    def epoch_hook(self, optimizer: torch.optim.Optimizer, schedule: object, *, epochs: int) -> Callable | None:
        """What the loop calls at the start of every epoch: unfreezes the backbone at model.unfreeze_at_epoch (as
        fastai's fine_tune does). Checks the setting now, before training; None when there is nothing to do."""
        at = self.unfreeze_at_epoch
        if at is None:
            return None
        if at > epochs:
            raise UserError(f"model.unfreeze_at_epoch={at} is after the last epoch (trainer.epochs={epochs}): "
                            f"use an epoch from 2 to {epochs}, or null")
        if isinstance(optimizer, torch.optim.LBFGS):
            raise UserError("model.unfreeze_at_epoch needs an optimizer with parameter groups, and LBFGS has one: "
                            "use another optimizer (e.g. optimizer=adam) or model.unfreeze_at_epoch=null")

        def on_epoch_start(epoch: int) -> None:
            if epoch == at:
                lr = unfreeze(self, optimizer, schedule)
                log.info(f"epoch {epoch}: backbone unfrozen, training at lr {lr:.3g}")

        return on_epoch_start

    def check_input_size(self, in_shape: Sequence[int], num_features: int) -> None:
        """One sample through the backbone now, so images it cannot take fail here in one sentence."""
        mode = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self.features(torch.zeros(1, *in_shape))
        except (RuntimeError, AssertionError, ValueError) as error:
            raise UserError(f"model.arch={self.arch} cannot take images of data.shape={list(in_shape)} "
                            f"({first_line(error)}): use larger images, e.g. data.image_size=224") from None
        finally:
            self.train(mode)
        if tuple(out.shape) != (1, num_features):
            raise UserError(f"model.arch={self.arch} gives features of shape {list(out.shape)}, not [1, {num_features}]"
                            ": it is not a network whose last Linear layer is its output; pick another model.arch")


def check_settings(in_shape: Sequence[int], freeze_backbone: bool, unfreeze_at_epoch: int | None,
                   cache_features: bool | str) -> None:
    """The settings that depend on each other; each value's own rule is in trainer/config/values.py."""
    if len(in_shape) != 3:
        raise UserError(f"transfer models need images shaped [channels, height, width], but data.shape="
                        f"{list(in_shape)}: use model=mlp for tabular data")
    check_auto_or_bool(cache_features, "model.cache_features")
    if unfreeze_at_epoch is not None:
        if not freeze_backbone:
            raise UserError("model.unfreeze_at_epoch needs model.freeze_backbone=true (it is already unfrozen): "
                            "set model.unfreeze_at_epoch=null")
        if not isinstance(unfreeze_at_epoch, int) or isinstance(unfreeze_at_epoch, bool) or unfreeze_at_epoch < 2:
            raise UserError(f"model.unfreeze_at_epoch={unfreeze_at_epoch} is invalid: use an epoch >= 2 "
                            "(model.freeze_backbone=false trains the backbone from the start) or null")


def check_channels(in_shape: Sequence[int], needed: int, arch: str) -> bool:
    """True if grayscale input must be repeated to the network's channels; a UserError if the channels differ."""
    channels = in_shape[0]
    if channels == needed:
        return False
    if channels == 1 and needed == 3:
        return True
    raise UserError(f"data.shape={list(in_shape)} has {channels} channels but model.arch={arch} takes {needed}: "
                    f"use data.channels={needed}")
