"""What an evaluation scores besides loss and accuracy, summed on the device: the metrics that compare across losses
(NLL, Brier, calibration bins) from the predicted probabilities, a regression's errors in the targets' own units, and
from a confusion matrix the metrics that see the minority classes (per-class recall, balanced accuracy, macro-F1)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from trainer.metrics.names import BALANCED_ACC, BRIER, ECE, ECE_BINS, MACRO_F1, MAE, NLL, R2, RMSE

if TYPE_CHECKING:
    from collections.abc import Callable


class ProbabilityScores:
    """Sums on the device behind the metrics that compare across losses, from each sample's predicted class
    probabilities p and true class y: NLL = mean of -log p[y]; Brier = mean of sum_k (p[k] - [k == y])^2 (0 is
    perfect, 2 the worst); and the top-label calibration bins: ECE_BINS equal-width confidence bins (lo, hi] of
    max_k p[k], each with its samples' count, summed confidence and number right. ECE = sum over bins of
    |summed confidence - number right| / samples, i.e. the count-weighted gap between confidence and accuracy."""

    def __init__(self, device: torch.device | str, log_probabilities: Callable[[torch.Tensor], torch.Tensor]):
        self.log_probabilities = log_probabilities  # the objective's logits -> log-probabilities
        self.nll, self.brier = torch.zeros((), device=device), torch.zeros((), device=device)
        self.count, self.confidence, self.right = (torch.zeros(ECE_BINS, device=device) for _ in range(3))
        self.edges = torch.linspace(0, 1, ECE_BINS + 1, device=device)[1:-1]  # the inner bin edges

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        log_p = self.log_probabilities(logits.float())
        p, true = log_p.exp(), labels.unsqueeze(1)
        p_true = p.gather(1, true)
        self.nll -= log_p.gather(1, true).sum()
        # sum_k (p_k - y_k)^2 = sum_k p_k^2 - 2 p_y + 1
        self.brier += p.square().sum() - 2 * p_true.sum() + len(labels)
        confidence, predicted = p.max(dim=1)
        bins = torch.bucketize(confidence, self.edges)
        self.count.index_add_(0, bins, torch.ones_like(confidence))
        self.confidence.index_add_(0, bins, confidence)
        self.right.index_add_(0, bins, (predicted == labels).float())

    def sums(self) -> list[torch.Tensor]:
        return [self.nll.clone(), self.brier.clone(), self.count.clone(), self.confidence.clone(), self.right.clone()]

    @staticmethod
    def results(nll: torch.Tensor, brier: torch.Tensor, count: torch.Tensor, confidence: torch.Tensor,
                right: torch.Tensor, *, count_all: int) -> dict[str, object]:
        """{NLL, BRIER, ECE, "calibration"} from summed tensors (over ranks) and the number of samples; the bins are
        in the form metrics.json keeps under CALIBRATION."""
        count, confidence, right = count.tolist(), confidence.tolist(), right.tolist()
        per_bin = lambda sums: [None if n == 0 else s / n for s, n in zip(sums, count)]
        return {NLL: nll.item() / count_all, BRIER: brier.item() / count_all,
                ECE: sum(abs(c - r) for c, r in zip(confidence, right)) / count_all,
                "calibration": {"bins": ECE_BINS, "confidence": per_bin(confidence), "accuracy": per_bin(right),
                              "count": [int(n) for n in count]}}


class RegressionScores:
    """Sums on the device behind a regression's metrics, of the predictions in the targets' own units (the
    objective's `predict`: a loss may train in a standardised or log space) against the targets: RMSE, MAE and
    R^2 = 1 - sum (y - prediction)^2 / sum (y - mean y)^2, over every target value of the pass. Summed in float64
    where the device has it, so R^2's difference of sums keeps its digits."""

    def __init__(self, device: torch.device | str, predict: Callable[[torch.Tensor], torch.Tensor]):
        self.predict = predict
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        self.values = torch.zeros(5, dtype=dtype, device=device)  # squared error, absolute error, y, y^2, count

    def add(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        error = (self.predict(outputs.float()) - targets).to(self.values.dtype)
        y = targets.to(self.values.dtype)
        self.values += torch.stack([error.square().sum(), error.abs().sum(), y.sum(), y.square().sum(),
                                    torch.tensor(float(y.numel()), dtype=y.dtype, device=y.device)])

    def sums(self) -> list[torch.Tensor]:
        return [self.values.clone()]

    @staticmethod
    def results(values: torch.Tensor, *, count_all: int) -> dict[str, float]:
        squared, absolute, y_sum, y_squares, n = values.tolist()
        n = max(n, 1)
        spread = y_squares - y_sum * y_sum / n  # sum (y - mean y)^2
        return {RMSE: math.sqrt(squared / n), MAE: absolute / n, R2: 1 - squared / spread if spread > 0 else math.nan}


def per_class_accuracy(confusion: torch.Tensor) -> list:
    """Fraction of each class's samples predicted as that class (the recall), from confusion[true, predicted];
    None for a class the split has no sample of."""
    totals = confusion.sum(dim=1).tolist()
    return [None if total == 0 else confusion[i, i].item() / total for i, total in enumerate(totals)]


def balanced_accuracy(confusion: torch.Tensor) -> float:
    """The mean recall of the classes the split has samples of, from confusion[true, predicted]: each class counts
    alike however few its samples (scikit-learn's balanced_accuracy_score)."""
    recalls = [recall for recall in per_class_accuracy(confusion) if recall is not None]
    return sum(recalls) / len(recalls) if recalls else math.nan


def macro_f1(confusion: torch.Tensor) -> float:
    """The mean over the classes that are true or predicted at least once of F1 = 2 TP / (2 TP + FP + FN), from
    confusion[true, predicted] (scikit-learn's f1_score(average="macro"), a class never predicted scoring 0)."""
    true_positive = confusion.diag().double()
    false_positive = confusion.sum(dim=0).double() - true_positive
    false_negative = confusion.sum(dim=1).double() - true_positive
    denominator = 2 * true_positive + false_positive + false_negative
    seen = denominator > 0
    return (2 * true_positive[seen] / denominator[seen]).mean().item() if bool(seen.any()) else math.nan


def minority_scores(confusion: torch.Tensor) -> dict:
    """{BALANCED_ACC, MACRO_F1} of a classification pass."""
    return {BALANCED_ACC: balanced_accuracy(confusion), MACRO_F1: macro_f1(confusion)}
