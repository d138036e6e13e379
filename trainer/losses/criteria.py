"""Criteria torch does not have: the seeds' mean squared log error, and torchvision's sigmoid focal loss as a
module. A loss config names them as its `criterion`."""
import torch
import torch.nn.functional as F
from torch import nn


class SquaredLogError(nn.Module):
    """Mean squared logarithmic error, mean((log(1 + input) - log(1 + target))^2), the MSLE of the seeds; torch has
    no criterion for it. Defined for inputs > -1, such as probabilities."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(torch.log1p(input), torch.log1p(target))


class FocalLoss(nn.Module):
    """torchvision's sigmoid focal loss (Lin et al. 2017): BCE on the logits with each term weighted by
    (1 - p_t)^gamma, so confidently right answers count little, and by alpha for positives (1 - alpha for
    negatives). Summed over the classes and averaged over the samples, as RetinaNet divides its sum by the number
    of positives: here one per sample. With `weight` (one per class: loss.class_weights), each sample's sum is
    weighted by its true class's weight and the average is over the summed weights (Cui et al. 2019's
    class-balanced focal loss; CrossEntropyLoss averages its weights the same way)."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        from torchvision.ops import sigmoid_focal_loss  # torchvision is imported only when this loss is used

        self.alpha, self.gamma, self.loss = alpha, gamma, sigmoid_focal_loss
        self.register_buffer("weight", weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """input: logits [batch, classes]; target: one-hot floats of the same shape."""
        if self.weight is None:
            return self.loss(input, target, alpha=self.alpha, gamma=self.gamma, reduction="sum") / input.shape[0]
        per_sample = self.loss(input, target, alpha=self.alpha, gamma=self.gamma, reduction="none").sum(dim=1)
        weights = self.weight[target.argmax(dim=1)]
        return (weights * per_sample).sum() / weights.sum()

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}"
