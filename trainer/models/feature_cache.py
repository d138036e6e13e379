"""The feature cache of a frozen backbone: with no random augmentation its output never changes, so it is computed
once per split and only the head trains on it (model.cache_features)."""
from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from trainer.errors import UserError


def uses_feature_cache(model: nn.Module, augment: bool) -> bool:
    """auto: cache whenever the backbone's output cannot change: frozen, no random augmentation, no unfreezing."""
    possible = model.frozen and not augment and model.unfreeze_at_epoch is None
    if model.cache_features == "auto":
        return possible
    if model.cache_features and not possible:
        raise UserError("model.cache_features=true needs a frozen backbone, data.augment=false and "
                        "model.unfreeze_at_epoch=null: use model.cache_features=auto")
    return model.cache_features


def backbone_features(model: nn.Module, batches: Iterable, *, device: torch.device) -> TensorDataset:
    """The backbone's output for every sample of a split, in order, with their labels. `batches`: the split's
    (x, y) batches in order (the run's reader: model code never builds loaders)."""
    model.eval()
    features, labels = [], []
    with torch.inference_mode():
        for x, y in batches:
            features.append(model.features(x.to(device)).float().cpu())
            labels.append(torch.as_tensor(y, dtype=torch.long))
    model.train()
    if not features:
        return TensorDataset(torch.empty(0, model.head.in_features), torch.empty(0, dtype=torch.long))
    # concatenated outside inference mode: the result is a normal tensor autograd may save for the head's backward
    return TensorDataset(torch.cat(features), torch.cat(labels))
