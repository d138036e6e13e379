"""The training objective: how logits and integer labels are turned into what a torch loss expects, and how logits
become the class probabilities every run is also scored on.

This module is the one place that maps a loss config's `input`, `target` and `probabilities` names to code. A loss
config names a torch criterion and these three conversions; accuracy is always computed from the raw logits.
"""
import torch
import torch.nn.functional as F
from torch import nn

from trainer.errors import UserError
from trainer.losses.class_weights import class_weights
from trainer.metrics import CLASSIFICATION, REGRESSION
from trainer.metrics.running import RunningMetrics
from trainer.metrics.scores import RegressionScores

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


def normalized_log_sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(z_k) / sum_j sigmoid(z_j)), computed in log space: a model trained with one yes/no question per
    class (BCE, focal) scores each class on its own, and its sigmoids, normalised to sum to one, are its
    distribution over the classes (same argmax as the logits, so accuracy and confidence agree)."""
    log_sigmoid = F.logsigmoid(logits)
    return log_sigmoid - log_sigmoid.logsumexp(dim=1, keepdim=True)


# How the model's logits become class probabilities, as log-probabilities, for the metrics that compare across losses
# (NLL, Brier, calibration). Log space keeps the NLL of a cross-entropy model equal to its loss.
PROBABILITIES = {
    "softmax": lambda logits: F.log_softmax(logits, dim=1),
    "normalized_sigmoid": normalized_log_sigmoid,
}


# A regression loss compares the model's raw outputs with the targets in one of these spaces (name -> the map and its
# inverse), standardised there with the training targets' mean and std (data.target_stats): "identity" for MSE, MAE
# and Huber; "log1p" for MSLE, so the model predicts log(1 + y) and its prediction expm1(...) is always above -1:
# MSLE is then exactly the squared error in that space, with no clamp on the predictions.
SPACES = {"identity": (lambda y: y, lambda y: y), "log1p": (torch.log1p, torch.expm1)}


class Objective(nn.Module):
    """Classification: criterion(INPUTS[input](logits), TARGETS[target](labels)), e.g. NLLLoss on log_softmax with
    indices; `log_probabilities(logits)` is PROBABILITIES[probabilities](logits). Regression (task="regression"):
    criterion(outputs, the targets mapped to the loss's `regression` space and standardised with `target_stats`);
    `predict(outputs)` maps outputs back to the targets' units; `regression_criterion`, when given, replaces the
    criterion for regression. A loss config leaves `input` (classification) or
    `regression` null for the task it does not fit (trainer/losses/tasks.py says so before anything is built)."""

    def __init__(self, criterion: nn.Module, input: str | None, target: str | None, num_classes: int,
                 probabilities: str = "softmax", *, task: str = CLASSIFICATION, regression: str | None = None,
                 target_stats: dict | None = None, regression_criterion: nn.Module | None = None,
                 class_weights: str | None = None, class_weights_beta: float = 0.999,
                 class_counts: list | None = None):
        super().__init__()
        for key, value, known in (("input", input, INPUTS), ("target", target, TARGETS),
                                  ("probabilities", probabilities, PROBABILITIES), ("regression", regression, SPACES)):
            if value is not None and value not in known:
                raise UserError(f"loss.{key}={value} is not known: use one of {', '.join(known)}")
        self.criterion, self.task, self.num_classes = criterion, task, num_classes
        self.input_name, self.target_name, self.probabilities_name = input, target, probabilities
        if task == REGRESSION:
            self.space_name, (self.to_space, self.from_space) = regression, SPACES[regression]
            mean, std = (target_stats or {}).get(regression) or (0.0, 1.0)
            self.register_buffer("target_mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
            self.register_buffer("target_std", torch.tensor(std, dtype=torch.float32), persistent=False)
            self.log_probabilities = None
            if regression_criterion is not None:  # msle: the criterion in its space is a plain squared error
                self.criterion = regression_criterion
        else:
            self.to_input, self.to_target = INPUTS[input], TARGETS[target]
            self.log_probabilities = PROBABILITIES[probabilities]
            if class_weights is not None:
                self.weigh_classes(class_weights, class_weights_beta, class_counts)

    def weigh_classes(self, scheme: str, beta: float, counts: list | None) -> None:
        """loss.class_weights: the criterion's `weight` (a buffer: it moves with the objective) set to each class's
        weight, computed from the training split's class counts (data.class_counts). Raises if the data stage did
        not fill them in (a bug: it always does for classification)."""
        if counts is None:
            raise ValueError(f"loss.class_weights={scheme} needs the training split's data.class_counts")
        self.criterion.weight = torch.tensor(class_weights(scheme, counts, beta), dtype=torch.float32)
        self.class_weights_name = scheme

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The batch loss (a scalar): logits [batch, classes] (or outputs [batch, targets]) against labels [batch]
        (or targets [batch, targets])."""
        if self.task == REGRESSION:
            scaled = (self.to_space(labels.float()) - self.target_mean) / self.target_std
            return self.criterion(logits.float(), scaled)
        inputs = self.to_input(logits)
        return self.criterion(inputs, self.to_target(labels, self.num_classes, inputs.dtype))

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """A regression's predictions in the targets' own units."""
        return self.from_space(outputs * self.target_std + self.target_mean)

    def new_metrics(self, device: torch.device, *, evaluation: bool) -> RunningMetrics:
        """The running metrics of a pass: accuracy (and, evaluating, the confusion matrix and the probability scores)
        for classification; RMSE, MAE and R^2 for regression."""
        if self.task == REGRESSION:
            return RunningMetrics(device, scores=RegressionScores(device, self.predict), classifies=False)
        return RunningMetrics(device, confusion=evaluation,
                              log_probabilities=self.log_probabilities if evaluation else None)

    def per_sample(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Each sample's own loss: the objective on a batch of that one sample (every criterion here averages over
        the samples of a batch, whatever it does within one)."""
        return torch.stack([self(logits[i:i + 1], labels[i:i + 1]) for i in range(len(labels))])

    def extra_repr(self) -> str:
        if self.task == REGRESSION:
            return f"task=regression, space={self.space_name}"
        weighted = f", class_weights={self.class_weights_name}" if hasattr(self, "class_weights_name") else ""
        return f"input={self.input_name}, target={self.target_name}, probabilities={self.probabilities_name}{weighted}"
