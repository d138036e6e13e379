"""Where a pretrained network's weights come from: a torchvision weights name (from torchvision's cache, downloaded
if online), a state-dict file as other tools save it (wrapped in a checkpoint, its names prefixed by DDP, torch.compile
or a module attribute, with a head of any size), or none (random initialisation), and the torchvision weights whose
preprocessing (image size, mean and std) the network's inputs get."""
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights, list_models

from trainer.errors import UserError, first_line
from trainer.logs import log
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


# Where a checkpoint saved by another tool keeps its state dict (timm's _helpers.load_state_dict looks for the first
# two; Lightning saves "state_dict", torchvision's references and losslab "model", many scripts "model_state_dict").
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "network", "module", "weights")
PREFIX_DEPTH = 3  # leading name parts a prefix may have: DDP's module., torch.compile's _orig_mod., an attribute


def is_state_dict(content: object) -> bool:
    """Names to tensors, mostly: a few other entries are reported as entries the network lacks (a checkpoint of
    another tool, which holds no tensor at its top, is not one)."""
    return (isinstance(content, dict) and all(isinstance(key, str) for key in content)
            and 2 * sum(isinstance(value, torch.Tensor) for value in content.values()) > len(content))


def described(content: object) -> str:
    """What a loaded file holds, in a few words, for a sentence."""
    if isinstance(content, dict):
        keys = [str(key) for key in content][:4]
        return f"a dict of {len(content)} entries ({', '.join(keys)}{', ...' if len(content) > 4 else ''})"
    if isinstance(content, torch.Tensor):
        return f"one tensor of shape {list(content.shape)}"
    return f"a {type(content).__name__}" + (f" of {len(content)} items" if isinstance(content, (list, tuple)) else "")


def unwrapped(content: object, path: Path, arch: str) -> tuple[dict, str | None]:
    """(the state dict a loaded weights file holds, the key it was found under or None): the file itself, or the
    first of WRAPPER_KEYS that holds one; anything else is one sentence saying what the file holds."""
    if is_state_dict(content):
        return content, None
    for key in WRAPPER_KEYS if isinstance(content, dict) else ():
        if is_state_dict(content.get(key)):
            return content[key], key
    raise UserError(f"model.weights={path} holds {described(content)}, not a state dict of {arch} (names to "
                    f"tensors, alone or under one of {', '.join(WRAPPER_KEYS)}): save model.state_dict() of {arch}")


def network_prefix(state: dict, expected: set[str]) -> str:
    """The leading part of the state dict's names that, stripped, names the most of `expected` (the network's own
    names): "" for a plain state dict, "module." (DistributedDataParallel), "_orig_mod." (torch.compile),
    "model." (a module attribute, as Lightning saves), or several of them."""
    prefixes = {""} | {".".join(key.split(".")[:depth]) + "." for key in state
                       for depth in range(1, min(PREFIX_DEPTH, key.count(".")) + 1)}
    fit = lambda prefix: sum(key.startswith(prefix) and key[len(prefix):] in expected for key in state)
    return max(sorted(prefixes, key=len), key=fit)


def network_entries(state: dict, network: nn.Module, head_name: str, path: Path) -> dict:
    """The entries of `state` for `network` without its head: the wrapper's prefix stripped, entries outside the
    network and the file's own head left out, each step logged (a head of any size: it is replaced anyway)."""
    prefix = network_prefix(state, set(network.state_dict()))
    inside = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    head = {key: value for key, value in inside.items() if key.startswith(head_name + ".")}
    said = [f"names prefixed {prefix!r} stripped"] if prefix else []
    if len(inside) < len(state):
        outside = [key for key in state if not key.startswith(prefix)]
        said.append(f"{len(outside)} entries outside the network left out (e.g. {outside[0]})")
    if head:
        outputs = head.get(head_name + ".weight", next(iter(head.values()))).shape[0]
        said.append(f"its {head_name} ({outputs} outputs) left out: the run's own head replaces it")
    if said:
        log.info(f"model.weights={path}: " + "; ".join(said))
    return {key: value for key, value in inside.items() if key not in head}


def load_state_dict_file(arch: str, path: Path) -> nn.Module:
    """The architecture with the weights of a state-dict file, as people save them: the state dict alone or in a
    checkpoint (WRAPPER_KEYS), its names with a wrapper's prefix (network_prefix), its output layer of any class count
    (the head is replaced anyway); what was unwrapped, stripped and left out is logged. Read with weights_only.

    Raises:
        UserError: the file holds no state dict, or one whose tensors do not fit `arch` (named with an example).
    """
    network = get_model(arch, weights=None)
    state, wrapper = unwrapped(load_pt(path, key="model.weights"), path, arch)
    if wrapper is not None:
        log.info(f"model.weights={path}: the state dict under {wrapper!r} of the checkpoint")
    head_name, _ = last_linear(network, arch)
    state = network_entries(state, network, head_name, path)
    tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    try:
        missing, unexpected = network.load_state_dict(tensors, strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        raise UserError(f"model.weights={path} does not fit model.arch={arch} ({first_line(error)})") from None
    missing = [key for key in missing if not key.startswith(head_name + ".")]
    unexpected = [*unexpected, *(key for key in state if key not in tensors)]
    if missing or unexpected:
        examples = " and ".join(f"{what} {names[0]}" for what, names in (("lacks", missing), ("has", unexpected))
                                if names)
        raise UserError(f"model.weights={path} does not fit model.arch={arch}: {len(missing)} missing and "
                        f"{len(unexpected)} unexpected entries (it {examples}); save model.state_dict() of {arch}")
    return network


def reference_weights(arch: str, weights: str | None) -> tuple[object, Path | None]:
    """The torchvision weights whose preprocessing (image size, mean and std) the network's inputs get: the named
    ones, or for None (random initialisation) and a state-dict file the architecture's default weights, which say
    what it was designed with. Returns (the weights, the state-dict file or None)."""
    enum = weights_enum(arch)
    if weights is None:
        return enum.DEFAULT, None
    name = str(weights)
    member = weights_member(enum, name)
    if member is not None:
        return enum[member], None
    if Path(name).expanduser().is_file():
        return enum.DEFAULT, Path(name).expanduser()
    raise UserError(f"model.weights={name} is neither a file nor a weights name of {arch} "
                    f"({', '.join(enum.__members__)}): use one of those, a path to a state-dict file, or null")


def weights_member(enum: type, name: str) -> str | None:
    """The member of a torchvision weights enum that `name` names (DEFAULT, IMAGENET1K_V1, ResNet18_Weights.DEFAULT),
    or None (a file path, or nothing it knows)."""
    member = name.split(".", 1)[1] if name.startswith(enum.__name__ + ".") else name
    return member if member in enum.__members__ else None


def preset_weights(arch: str, weights: str | None) -> object:
    """The torchvision weights whose preprocessing a trained network's inputs get, without reading or downloading
    anything: the named ones, else (None, a state-dict file, present or not) the architecture's default."""
    enum = weights_enum(arch)
    member = weights_member(enum, str(weights)) if weights is not None else None
    return enum[member] if member is not None else enum.DEFAULT


def load_network(arch: str, weights: str | None, *, load: bool = True) -> tuple[nn.Module, object]:
    """The torchvision network and the weights whose preprocessing its inputs get.

    weights: a torchvision weights name of the architecture (DEFAULT, IMAGENET1K_V1, ...), None (random
    initialisation) or a path to a state-dict file. `load=False`: the network's weights come from elsewhere (a
    checkpoint, which holds all of them), so none are read or downloaded, and the file need not exist any more.
    """
    if not load:
        return get_model(arch, weights=None), preset_weights(arch, weights)
    reference, file = reference_weights(arch, weights)
    if weights is None:
        return get_model(arch, weights=None), reference
    if file is not None:
        return load_state_dict_file(arch, file), reference
    return load_pretrained(arch, reference, str(weights)), reference
