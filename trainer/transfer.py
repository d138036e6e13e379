"""Transfer learning: a torchvision classification network whose last Linear layer is replaced by a new head.

`TransferModel` is the one builder; conf/model/resnet18_transfer.yaml and vgg16_transfer.yaml are presets of it.
Any architecture torchvision lists works by name (`model.arch=mobilenet_v3_small`): the last nn.Linear it
registers is its output layer (`fc` for ResNet, `classifier[6]` for VGG). That layer becomes nn.Identity inside
`backbone`, so `backbone(x)` is the feature vector the new `head` reads.

The model carries what the training run does differently for it, as the hooks trainer/models.py describes: the
feature cache for a frozen backbone (`training_view`) and unfreezing at `model.unfreeze_at_epoch` (`epoch_hook`).
"""
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.models import get_model, get_model_weights, list_models

from trainer import checkpoint
from trainer.data import Splits, make_loader
from trainer.errors import UserError, first_line
from trainer.logs import log

CACHE_SETTINGS = ("auto", True, False)


def weights_enum(arch):
    """The torchvision weights enum of `arch`, e.g. ResNet18_Weights; a UserError for unknown names."""
    known = list_models(module=torchvision.models)
    if arch not in known:
        raise UserError(f"model.arch={arch} is not a torchvision classification model: use one of resnet18, vgg16, "
                        f"mobilenet_v3_small, ... (torchvision.models.list_models() lists all {len(known)})")
    return get_model_weights(arch)


def cached_weights_file(weights):
    """Where torchvision keeps a downloaded weights file: $TORCH_HOME/hub/checkpoints/<file name of its url>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def last_linear(network, arch):
    """The name and module of the last nn.Linear in `network`: its output layer."""
    linears = [(name, module) for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserError(f"model.arch={arch} has no Linear output layer to replace: pick another architecture")
    return linears[-1]


def load_pretrained(arch, weights, name):
    """`get_model(arch, weights)` from torchvision's cache, downloading if online; offline without the file, a
    UserError naming the file, before any training starts."""
    path = cached_weights_file(weights)
    try:
        return get_model(arch, weights=weights)
    except OSError as error:  # URLError and socket errors are OSErrors: the file is missing and the download failed
        if path.is_file():
            raise
        raise UserError(
            f"model.weights={name} needs {path}, which is not there and could not be downloaded "
            f"({first_line(error)}): copy {weights.url} to that path (TORCH_HOME sets its root), or use "
            f"model.weights=null for random initialisation or model.weights=/path/to/state_dict.pth"
        ) from None


def load_state_dict_file(arch, path):
    """The architecture with the weights of a state-dict file. Its output layer's entries are dropped: the head is
    replaced anyway, so a file saved with any class count fits."""
    network = get_model(arch, weights=None)
    state = checkpoint.load(path, key="model.weights", required=())
    head_name, _ = last_linear(network, arch)
    state = {key: value for key, value in state.items() if not key.startswith(head_name + ".")}
    try:
        missing, unexpected = network.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        raise UserError(f"model.weights={path} does not fit model.arch={arch} ({first_line(error)})") from None
    missing = [key for key in missing if not key.startswith(head_name + ".")]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise UserError(f"model.weights={path} does not fit model.arch={arch}: {len(missing)} missing and "
                        f"{len(unexpected)} unexpected entries (e.g. {example}); save model.state_dict() of {arch}")
    return network


def reference_weights(arch, weights):
    """The torchvision weights whose preprocessing (image size, mean and std) the network's inputs get: the named
    ones, or for None (random initialisation) and a state-dict file the architecture's default weights, which say
    what it was designed with. Returns (the weights, the state-dict file or None)."""
    enum = weights_enum(arch)
    if weights is None:
        return enum.DEFAULT, None
    name = str(weights)
    member = name.split(".", 1)[1] if name.startswith(enum.__name__ + ".") else name  # ResNet18_Weights.DEFAULT
    if member in enum.__members__:
        return enum[member], None
    if Path(name).expanduser().is_file():
        return enum.DEFAULT, Path(name).expanduser()
    raise UserError(f"model.weights={name} is neither a file nor a weights name of {arch} "
                    f"({', '.join(enum.__members__)}): use one of those, a path to a state-dict file, or null")


def load_network(arch, weights):
    """The torchvision network and the weights whose preprocessing its inputs get.

    weights: a torchvision weights name of the architecture (DEFAULT, IMAGENET1K_V1, ...), None (random
    initialisation) or a path to a state-dict file.
    """
    reference, file = reference_weights(arch, weights)
    if weights is None:
        return get_model(arch, weights=None), reference
    if file is not None:
        return load_state_dict_file(arch, file), reference
    return load_pretrained(arch, reference, str(weights)), reference


def input_channels(network):
    first_conv = next((m for m in network.modules() if isinstance(m, nn.Conv2d)), None)
    return 3 if first_conv is None else first_conv.in_channels


class TransferModel(nn.Module):
    """prepare (channels, normalisation) -> backbone (the pretrained network minus its output layer) -> head.

    With `freeze_backbone` the backbone's parameters get no gradients (so the optimizer never sees them) and the
    backbone stays in eval mode across every `train()` call: BatchNorm running statistics never move and dropout
    is off, so the backbone is a fixed function of its input.

    Its inputs are images in [0, 1]: `prepare` normalises them with its weights' mean and std, so the data stage
    must not normalise them too (`normalizes_input`), and with data.image_size=null they come at the size its weights
    were trained at (`input_size`). Both are read from the class, before the data is decoded.
    """
    normalizes_input = True

    @staticmethod
    def input_size(settings):
        """The image side the weights were trained at (their transforms' crop size, 224 for ImageNet's): what
        data.image_size=null gives a transfer model. `settings`: the model config (arch, weights)."""
        reference, _ = reference_weights(settings["arch"], settings.get("weights", "DEFAULT"))
        return reference.transforms().crop_size[0]

    def __init__(self, *, arch, in_shape, num_classes, weights="DEFAULT", freeze_backbone=True, unfreeze_at_epoch=None,
                 backbone_lr_mult=0.1, cache_features="auto"):
        super().__init__()
        check_settings(in_shape, freeze_backbone, unfreeze_at_epoch, backbone_lr_mult, cache_features)
        network, reference = load_network(arch, weights)
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

    def set_frozen(self, frozen):
        self.frozen = frozen
        self.backbone.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # frozen BatchNorm keeps its running statistics; dropout stays off
        return self

    def prepare(self, x):
        if self.repeat_gray:
            x = x.expand(-1, 3, -1, -1)  # grayscale repeated to the 3 channels the network was built for
        return (x - self.mean) / self.std

    def features(self, x):
        return self.backbone(self.prepare(x))

    def forward(self, x):
        return self.head(self.features(x))

    # --- the hooks the run calls (trainer/models.py lists them) ---

    def training_view(self, splits, *, batch_size, num_workers, augment, device):
        """With a frozen backbone whose input is not randomly augmented, the backbone gives the same output every
        epoch: compute it once per split, and train and evaluate only the head on it.

        Returns (the module the loop runs, the splits it runs on): (self.head, feature splits) when caching, else
        (self, splits) unchanged. The head is part of the model, so checkpoints of the model hold the trained head.
        """
        if not uses_feature_cache(self, augment):
            return self, splits
        part = lambda dataset: None if dataset is None else backbone_features(
            self, dataset, batch_size=batch_size, num_workers=num_workers, device=device)
        return self.head, Splits(train=part(splits.train), val=part(splits.val), test=part(splits.test),
                                 classes=splits.classes)

    def epoch_hook(self, optimizer, schedule, *, epochs):
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

        def on_epoch_start(epoch):
            if epoch == at:
                lr = unfreeze(self, optimizer, schedule)
                log.info(f"epoch {epoch}: backbone unfrozen, training at lr {lr:.3g}")

        return on_epoch_start

    def check_input_size(self, in_shape, num_features):
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


def check_settings(in_shape, freeze_backbone, unfreeze_at_epoch, backbone_lr_mult, cache_features):
    if len(in_shape) != 3:
        raise UserError(f"transfer models need images shaped [channels, height, width], but data.shape="
                        f"{list(in_shape)}: use model=mlp for tabular data")
    if cache_features not in CACHE_SETTINGS:
        raise UserError(f"model.cache_features={cache_features} is not known: use auto, true or false")
    if unfreeze_at_epoch is not None:
        if not freeze_backbone:
            raise UserError("model.unfreeze_at_epoch needs model.freeze_backbone=true (it is already unfrozen): "
                            "set model.unfreeze_at_epoch=null")
        if not isinstance(unfreeze_at_epoch, int) or isinstance(unfreeze_at_epoch, bool) or unfreeze_at_epoch < 2:
            raise UserError(f"model.unfreeze_at_epoch={unfreeze_at_epoch} is invalid: use an epoch >= 2 "
                            "(model.freeze_backbone=false trains the backbone from the start) or null")
    if not isinstance(backbone_lr_mult, (int, float)) or isinstance(backbone_lr_mult, bool) or backbone_lr_mult <= 0:
        raise UserError(f"model.backbone_lr_mult={backbone_lr_mult} is invalid: use a number > 0, e.g. 0.1")


def check_channels(in_shape, needed, arch):
    """True if grayscale input must be repeated to the network's channels; a UserError if the channels differ."""
    channels = in_shape[0]
    if channels == needed:
        return False
    if channels == 1 and needed == 3:
        return True
    raise UserError(f"data.shape={list(in_shape)} has {channels} channels but model.arch={arch} takes {needed}: "
                    f"use data.channels={needed}")


# --- the feature cache --------------------------------------------------------------------------------------------


def uses_feature_cache(model, augment):
    """auto: cache whenever the backbone's output cannot change: frozen, no random augmentation, no unfreezing."""
    possible = model.frozen and not augment and model.unfreeze_at_epoch is None
    if model.cache_features == "auto":
        return possible
    if model.cache_features and not possible:
        raise UserError("model.cache_features=true needs a frozen backbone, data.augment=false and "
                        "model.unfreeze_at_epoch=null: use model.cache_features=auto")
    return model.cache_features


def backbone_features(model, dataset, *, batch_size, num_workers, device):
    """The backbone's output for every sample of a split, in order, with their labels."""
    model.eval()
    features, labels = [], []
    with torch.inference_mode():
        for x, y in make_loader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers):
            features.append(model.features(x.to(device)).float().cpu())
            labels.append(torch.as_tensor(y, dtype=torch.long))
    model.train()
    if not features:
        return TensorDataset(torch.empty(0, model.head.in_features), torch.empty(0, dtype=torch.long))
    # concatenated outside inference mode: the result is a normal tensor autograd may save for the head's backward
    return TensorDataset(torch.cat(features), torch.cat(labels))


# --- fine-tuning: unfreezing the backbone ------------------------------------------------------------------------


def schedule_new_group(scheduler, optimizer, lr_mult):
    """A scheduler keeps per-group state made when it was built; give the added group the first group's, with
    learning rates scaled, so the backbone's rate follows the same schedule at lr_mult times the head's."""
    if scheduler is None:
        return
    first, added = optimizer.param_groups[0], optimizer.param_groups[-1]
    for key in ("initial_lr", "max_lr", "min_lr"):  # every scheduler's initial_lr; OneCycleLR's cycle
        if key in first:
            added[key] = first[key] * lr_mult
    for key in ("max_momentum", "base_momentum"):  # OneCycleLR cycles momentum too
        if key in first:
            added[key] = first[key]
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs.append(scheduler.base_lrs[0] * lr_mult)
    if hasattr(scheduler, "min_lrs"):  # ReduceLROnPlateau
        scheduler.min_lrs.append(scheduler.min_lrs[0])


def unfreeze(model, optimizer, schedule):
    """Let the backbone train from now on, in its own optimizer group at model.backbone_lr_mult times the head's
    current learning rate."""
    model.set_frozen(False)
    lr = optimizer.param_groups[0]["lr"] * model.backbone_lr_mult
    optimizer.add_param_group({"params": list(model.backbone.parameters()), "lr": lr})
    schedule_new_group(schedule.scheduler, optimizer, model.backbone_lr_mult)
    return lr
