"""The training objective: how logits and integer labels are turned into what a torch loss expects.

This module is the one place that maps a loss config's `input` and `target` names to code. A loss config
names a torch criterion and these two conversions; accuracy is always computed from the raw logits.
"""
import torch.nn.functional as F
from torch import nn

from trainer.errors import UserError

# How the model's logits become the criterion's input.
INPUTS = {
    "identity": lambda logits: logits,  # the criterion applies its own (log-)softmax or sigmoid
    "log_softmax": lambda logits: F.log_softmax(logits, dim=1),
    "sigmoid": lambda logits: logits.sigmoid(),
    "softmax": lambda logits: F.softmax(logits, dim=1),
}

# How integer class labels become the criterion's target.
TARGETS = {
    "index": lambda labels, num_classes, dtype: labels,
    # BCE, MSE and friends compare per-class values, so they need a float one-hot target of the input's shape and dtype
    "onehot": lambda labels, num_classes, dtype: F.one_hot(labels, num_classes).to(dtype),
}


class Objective(nn.Module):
    """criterion(INPUTS[input](logits), TARGETS[target](labels)), e.g. NLLLoss on log_softmax with indices."""

    def __init__(self, criterion, input, target, num_classes):
        super().__init__()
        if input not in INPUTS:
            raise UserError(f"loss.input={input} is not known: use one of {', '.join(INPUTS)}")
        if target not in TARGETS:
            raise UserError(f"loss.target={target} is not known: use one of {', '.join(TARGETS)}")
        self.criterion = criterion
        self.input_name, self.target_name = input, target
        self.to_input, self.to_target = INPUTS[input], TARGETS[target]
        self.num_classes = num_classes

    def forward(self, logits, labels):
        inputs = self.to_input(logits)
        return self.criterion(inputs, self.to_target(labels, self.num_classes, inputs.dtype))

    def extra_repr(self):
        return f"input={self.input_name}, target={self.target_name}"
