"""Where a pretrained network's weights come from: a torchvision weights name (from torchvision's cache, downloaded
if online), a state-dict file, or none (random initialisation), and the torchvision weights whose preprocessing (image
size, mean and std) the network's inputs get."""
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights, list_models

from trainer.errors import UserError, first_line
from trainer.safe_load import load_pt


def weights_enum(arch: str) -> type:
    """The torchvision weights enum of `arch`, e.g. ResNet18_Weights; a UserError for unknown names."""
    known = list_models(module=torchvision.models)
    if arch not in known:
        raise UserError(f"model.arch={arch} is not a torchvision classification model: use one of resnet18, vgg16, "
                        f"mobilenet_v3_small, ... (torchvision.models.list_models() lists all {len(known)})")
    return get_model_weights(arch)


def cached_weights_file(weights: object) -> Path:
    """Where torchvision keeps a downloaded weights file: $TORCH_HOME/hub/checkpoints/<file name of its url>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def last_linear(network: nn.Module, arch: str) -> tuple[str, nn.Linear]:
    """The name and module of the last nn.Linear in `network`: its output layer."""
    linears = [(name, module) for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserError(f"model.arch={arch} has no Linear output layer to replace: pick another architecture")
    return linears[-1]


def load_pretrained(arch: str, weights: object, name: str) -> nn.Module:
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


def load_state_dict_file(arch: str, path: Path) -> nn.Module:
    """The architecture with the weights of a state-dict file. Its output layer's entries are dropped: the head is
    replaced anyway, so a file saved with any class count fits."""
    network = get_model(arch, weights=None)
    state = load_pt(path, key="model.weights")
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


def reference_weights(arch: str, weights: str | None) -> tuple[object, Path | None]:
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


def load_network(arch: str, weights: str | None) -> tuple[nn.Module, object]:
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
