"""The running sums of a pass, kept on the device: loss and accuracy (and the confusion matrix) of every pass, the
gradient norm of a training pass, and an evaluation's scores (trainer/metrics/scores.py). Nothing here waits for the
device until a value is read."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trainer.metrics.names import ACC, GRAD_NORM_MAX, GRAD_NORM_MEAN, LOSS
from trainer.metrics.scores import ProbabilityScores, RegressionScores, minority_scores
from trainer.runtime import distributed

if TYPE_CHECKING:
    from collections.abc import Callable


class RunningMetrics:
    """Sample-weighted loss and accuracy (argmax of the logits) over a pass, kept on the device; with
    `confusion=True` also the confusion matrix: confusion[true, predicted] counts samples. Given
    `log_probabilities` (the objective's logits -> log-probabilities, for evaluation) also the sums behind NLL, the
    Brier score and the calibration bins; given a step's gradient norm (training), its mean and max.

    A step only keeps its batch's loss, logits, labels and gradient norm; every `WINDOW` batches (and when the batch
    size changes) they are reduced on the device in a few ops, because at small batches each extra op per step is a
    visible share of the step. Nothing here waits for the device until a value is read.
    """

    WINDOW = 32

    def __init__(self, device: torch.device | str, confusion: bool = False,
                 log_probabilities: Callable[[torch.Tensor], torch.Tensor] | None = None, *,
                 scores: ProbabilityScores | RegressionScores | None = None, classifies: bool = True):
        zero = lambda *shape, dtype=torch.float32: torch.zeros(shape, dtype=dtype, device=device)
        self.loss_sum, self.correct, self.count = zero(), zero(dtype=torch.long), 0
        self.track_confusion, self.confusion, self.classifies = confusion, None, classifies
        # what else the pass scores from the outputs: the predicted probabilities (ProbabilityScores), or a
        # regression's errors (RegressionScores)
        self.scores = ProbabilityScores(device, log_probabilities) if log_probabilities is not None else scores
        self.grad_norm_sum, self.grad_norm_max, self.grad_norm_count = zero(), zero(), zero(dtype=torch.long)
        # the window not yet reduced: per batch (of size pending_size) its loss and gradient norm, summed in
        # float32, and its logits and labels, counted in integers
        self.pending_losses, self.pending_norms, self.pending, self.pending_size = [], [], [], 0

    def update(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
               grad_norm: torch.Tensor | None = None) -> None:
        """`loss` and `logits` must need no grad (optimizer_step returns them detached), or they would keep the
        autograd graph alive until the next reduce."""
        n = labels.shape[0]
        if self.pending_losses and (n != self.pending_size or len(self.pending_losses) == self.WINDOW):
            self._reduce()
        self.pending_losses.append(loss)
        self.pending.append((logits, labels))
        if grad_norm is not None:
            self.pending_norms.append(grad_norm)
        self.pending_size = n
        self.count += n

    def _reduce(self):
        if self.pending_norms:
            self._reduce_norms(torch.stack(self.pending_norms))
            self.pending_norms = []
        if self.pending_losses:
            self.loss_sum += torch.stack(self.pending_losses).sum() * self.pending_size  # a batch loss: its mean
            self.pending_losses = []
        self._count()

    def _count(self):
        """What the pending batches' logits add: counts (exact in any grouping) and, in an evaluation (never resumed
        mid-pass), the probability scores."""
        if not self.pending:
            return
        logits, labels = (torch.cat(parts) for parts in zip(*self.pending))
        self.pending = []
        if self.classifies:
            predicted = logits.argmax(dim=1)
            self.correct += (predicted == labels).sum()
            if self.track_confusion:
                self._count_pairs(labels, predicted, classes=logits.shape[1])
        if self.scores is not None:
            self.scores.add(logits, labels)

    def _reduce_norms(self, norms):
        # a step a GradScaler skipped (inf or nan gradients) updated nothing: it is left out of mean and max
        finite = norms.isfinite()
        norms = torch.where(finite, norms.float(), 0.0)
        self.grad_norm_sum += norms.sum()
        self.grad_norm_max = torch.maximum(self.grad_norm_max, norms.max())
        self.grad_norm_count += finite.sum()

    def _count_pairs(self, labels, predicted, classes):
        self.classes = classes
        if self.confusion is None:
            self.confusion = torch.zeros(classes * classes, dtype=torch.long, device=labels.device)
        # one bincount on the device: the pair (true, predicted) as the flat index true * C + predicted
        self.confusion += torch.bincount(labels * classes + predicted, minlength=classes * classes)

    def running(self) -> dict:
        """This process's running {"loss", "acc"} for a progress bar (a sync point, and no reduction over ranks:
        only rank 0 draws bars)."""
        self._reduce()
        count = max(self.count, 1)
        running = {LOSS: f"{self.loss_sum.item() / count:.4f}"}
        return {**running, ACC: f"{self.correct.item() / count:.3f}"} if self.classifies else running

    def state_dict(self) -> dict:
        """What a run stopped mid-epoch resumes with: the sums of the steps it had done, and the losses and
        gradient norms of the window in progress as they are, so that the resumed run sums the same groups in float32
        as an uninterrupted one would (its epoch's metrics are then bit-identical)."""
        self._count()
        stacked = lambda values: torch.stack(values).cpu() if values else torch.zeros(0)
        return {"loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(), "count": self.count,
                "grad_norm": torch.stack([self.grad_norm_sum, self.grad_norm_max,
                                          self.grad_norm_count.float()]).cpu(),
                "window": {"losses": stacked(self.pending_losses), "norms": stacked(self.pending_norms),
                           "batch_size": self.pending_size}}

    def load_state_dict(self, state: dict) -> None:
        self.loss_sum.copy_(state["loss_sum"])
        self.correct.copy_(state["correct"])
        self.count = state["count"]
        if "grad_norm" in state:  # not in a checkpoint written before the gradient norm was measured
            norm_sum, norm_max, norm_count = state["grad_norm"].tolist()
            self.grad_norm_sum.fill_(norm_sum)
            self.grad_norm_max.fill_(norm_max)
            self.grad_norm_count.fill_(int(norm_count))
        if "window" in state:  # not in a checkpoint written before the window was kept
            device = self.loss_sum.device
            self.pending_losses = list(state["window"]["losses"].to(device))
            self.pending_norms = list(state["window"]["norms"].to(device))
            self.pending_size = state["window"]["batch_size"]

    def compute(self) -> dict:
        """{LOSS, ACC} (and "confusion", BALANCED_ACC and MACRO_F1; NLL, BRIER, ECE and "calibration"; GRAD_NORM_MEAN
        and GRAD_NORM_MAX) over every sample seen, by all ranks under torchrun."""
        self._reduce()
        sums = [self.loss_sum.clone(), self.correct.clone(), torch.tensor(self.count, device=self.correct.device),
                self.grad_norm_sum.clone(), self.grad_norm_count.clone()]
        if self.confusion is not None:
            sums.append(self.confusion.clone())
        scored = self.scores.sums() if self.scores is not None else []
        sums = distributed.sum_across_ranks(*sums, *scored)
        count = max(sums[2].item(), 1)
        result = {LOSS: sums[0].item() / count, **({ACC: sums[1].item() / count} if self.classifies else {})}
        if sums[4].item() > 0:
            # every rank steps on the same averaged gradients, so their norms agree: the max is this rank's
            result[GRAD_NORM_MEAN] = sums[3].item() / sums[4].item()
            result[GRAD_NORM_MAX] = self.grad_norm_max.item()
        if self.confusion is not None:
            result["confusion"] = sums[5].view(self.classes, self.classes).cpu()
            result.update(minority_scores(result["confusion"]))
        if scored:
            result.update(self.scores.results(*sums[-len(scored):], count_all=count))
        return result
