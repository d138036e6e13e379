"""Models: built from scratch (`scratch`: the seeds' small CNN, the MLP) and pretrained torchvision networks with a new
head (`transfer`, with `weights` for loading weights files, `feature_cache` and `fine_tune` for its hooks).

Every model takes `in_shape` (one sample's shape) and `num_classes` from the data config and returns logits.

A model that needs the run to treat it specially defines hooks, which the run calls when they exist (the run never
asks a model's type; see TransferModel in trainer/models/transfer.py):
- `training_view(splits, *, read, augment, device) -> (net, splits)`: the module the loop runs and the data it runs
  on, e.g. a head on features computed once (`read(dataset)` gives a split's (x, y) batches in order);
- `epoch_hook(optimizer, schedule, *, epochs) -> callable(epoch) | None`: called at the start of every epoch,
  e.g. to unfreeze a backbone.
Two are read from the class, before the data is decoded (the data stage, trainer/data/stage.py):
- `normalizes_input = True`: the model normalises its own input (a pretrained network, with its weights' values),
  so the data stage leaves the images as decoded;
- `input_size(settings) -> int` (a static method; settings: the model config): the image size to decode to when
  data.image_size is null, e.g. the size pretrained weights were trained at.
"""
from trainer._lazy import lazy_exports
from trainer.models.scratch import ACTIVATIONS, MLP, SmallCNN, make_activation

# TransferModel imports torchvision: loaded when a config names it
__getattr__ = lazy_exports(__name__, {"TransferModel": "transfer"})

__all__ = ["ACTIVATIONS", "MLP", "make_activation", "SmallCNN", "TransferModel"]
