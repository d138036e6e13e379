"""Metric names, defined once, and the running sums a pass keeps on the device.

Every reader takes its names from here: TensorBoard tags and history keys (`loss/val`), metrics.json keys
(`test/acc`, `best/val_acc`), the sweep summary's columns, the HParams tab, the scheduler's monitor and the
sweeper's return value. Rename one here and every reader follows.
"""
import math
from dataclasses import dataclass

import torch

from trainer import distributed

# what a pass measures, and the splits it measures them on
LOSS, ACC = "loss", "acc"
TRAIN, VAL, TEST = "train", "val", "test"
LR = "lr"  # the learning rate an epoch started with
TRAIN_STEP_LOSS = "loss/train_step"  # the batch loss every trainer.log_every_n_steps steps


def tag(metric, split):
    """TensorBoard tag and history key: tag(LOSS, VAL) == "loss/val"."""
    return f"{metric}/{split}"


def result_key(split, metric):
    """metrics.json key: result_key(TEST, ACC) == "test/acc"."""
    return f"{split}/{metric}"


# metrics.json keys besides result_key(...)
EPOCHS, WALL_TIME, HISTORY = "epochs", "wall_time_s", "history"
PER_CLASS_ACC = result_key(TEST, "per_class_acc")

# Metrics that compare across losses, from the predicted class probabilities: the mean negative log-probability of
# the true class, the Brier score, the expected calibration error (top-label, ECE_BINS equal-width bins).
NLL, BRIER, ECE = "nll", "brier", "ece"
ECE_BINS = 15
CALIBRATION = result_key(TEST, "calibration")  # the test split's reliability bins: confidence, accuracy, count
# A regression's metrics, in the targets' own units: root mean squared error, mean absolute error, and R^2 (the
# fraction of the targets' variance the predictions explain: 1 is perfect, 0 predicting the mean).
RMSE, MAE, R2 = "rmse", "mae", "r2"
# what a pass reports under its split's tags (tag(metric, split)): training passes have the first two
PASS_METRICS = (LOSS, ACC, NLL, BRIER, ECE, RMSE, MAE, R2)


def pass_tags(split, result):
    """{"loss/val": ..., "acc/val": ..., "nll/val": ...}: a pass's results under their TensorBoard tags."""
    return {tag(metric, split): result[metric] for metric in PASS_METRICS if metric in result}


def result_line(test):
    """The test result as the log shows it: accuracy, loss, NLL and ECE; for regression RMSE, MAE, R^2 and loss."""
    if ACC in test:
        return f"acc {test[ACC]:.4f}  loss {test[LOSS]:.4f}  nll {test[NLL]:.4f}  ece {test[ECE]:.4f}"
    return f"rmse {test[RMSE]:.4f}  mae {test[MAE]:.4f}  r2 {test[R2]:.4f}  loss {test[LOSS]:.4f}"


def pass_results(split, result):
    """{"test/loss": ..., "test/acc": ..., ...}: a pass's results under their metrics.json keys."""
    return {result_key(split, metric): result[metric] for metric in PASS_METRICS if metric in result}


# The global L2 norm of the gradients before each optimizer step.
GRAD_NORM = "grad_norm"
GRAD_NORM_STEP = tag(GRAD_NORM, "train_step")                      # TensorBoard, every log step
GRAD_NORM_MEAN, GRAD_NORM_MAX = tag(GRAD_NORM, "train_mean"), tag(GRAD_NORM, "train_max")  # history, per epoch
MAX_GRAD_NORM = result_key(TRAIN, "grad_norm_max")                # metrics.json: the run's largest
CHOSEN_LR = "optimizer/lr"  # metrics.json, HParams, summary: the rate optimizer.lr=auto picked


@dataclass(frozen=True)
class Monitor:
    """What "best" means: which validation metric picks best.pt, and whether higher is better."""
    metric: str = ACC
    split: str = VAL
    higher_is_better: bool = True

    @property
    def tag(self):
        return tag(self.metric, self.split)  # "acc/val", the history key it reads

    @property
    def best_key(self):
        return f"best/{self.split}_{self.metric}"  # "best/val_acc" in metrics.json and TensorBoard

    def improved(self, value, best):
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


BEST = Monitor()
BEST_EPOCH = "best/epoch"
# what a dataset's data.task says it is
CLASSIFICATION, REGRESSION = "classification", "regression"


# every "best" a run can record: classification's validation accuracy, or a regression's data.best
MONITORS = (BEST, Monitor(metric=RMSE, higher_is_better=False), Monitor(metric=MAE, higher_is_better=False),
            Monitor(metric=R2))


def recorded_monitor(metrics):
    """The Monitor whose best a run's metrics (metrics.json) hold; BEST when none."""
    return next((monitor for monitor in MONITORS if monitor.best_key in metrics), BEST)


def monitor_for(data):
    """What "best" means for the data config's task: the highest validation accuracy for classification; for
    regression the lowest validation data.best (rmse by default, or mae), or the highest r2."""
    if data.get("task", CLASSIFICATION) != REGRESSION:
        return BEST
    metric = data.get("best", RMSE)
    return Monitor(metric=metric, higher_is_better=metric == R2)
# what a scheduler config may name as scheduler.monitor
MONITORABLE = (tag(LOSS, VAL), tag(ACC, VAL))


class NonFinite(Exception):
    """A loss or the weights stopped being finite numbers; trainer.train turns it into the run's one message."""

    def __init__(self, what, value, step):
        super().__init__(f"the {what} became {value} by step {step}")
        self.what, self.value, self.step = what, value, step


def check_finite(what, value, step):
    """The one divergence check: `value` is a float already read back from the device."""
    if not math.isfinite(value):
        raise NonFinite(what, value, step)


def weights_are_finite(model):
    # one sync for the whole model: a nan/inf anywhere must never replace a good checkpoint
    return bool(torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all())


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

    def __init__(self, device, confusion=False, log_probabilities=None, *, scores=None, classifies=True):
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

    def update(self, loss, logits, labels, grad_norm=None):
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

    def running(self):
        """This process's running {"loss", "acc"} for a progress bar (a sync point, and no reduction over ranks:
        only rank 0 draws bars)."""
        self._reduce()
        count = max(self.count, 1)
        running = {LOSS: f"{self.loss_sum.item() / count:.4f}"}
        return {**running, ACC: f"{self.correct.item() / count:.3f}"} if self.classifies else running

    def state_dict(self):
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

    def load_state_dict(self, state):
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

    def compute(self):
        """{LOSS, ACC} (and "confusion"; NLL, BRIER, ECE and "calibration"; GRAD_NORM_MEAN and GRAD_NORM_MAX) over
        every sample seen, by all ranks under torchrun."""
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
        if scored:
            result.update(self.scores.results(*sums[-len(scored):], count_all=count))
        return result


class ProbabilityScores:
    """Sums on the device behind the metrics that compare across losses, from each sample's predicted class
    probabilities p and true class y: NLL = mean of -log p[y]; Brier = mean of sum_k (p[k] - [k == y])^2 (0 is
    perfect, 2 the worst); and the top-label calibration bins: ECE_BINS equal-width confidence bins (lo, hi] of
    max_k p[k], each with its samples' count, summed confidence and number right. ECE = sum over bins of
    |summed confidence - number right| / samples, i.e. the count-weighted gap between confidence and accuracy."""

    def __init__(self, device, log_probabilities):
        self.log_probabilities = log_probabilities  # the objective's logits -> log-probabilities
        self.nll, self.brier = torch.zeros((), device=device), torch.zeros((), device=device)
        self.count, self.confidence, self.right = (torch.zeros(ECE_BINS, device=device) for _ in range(3))
        self.edges = torch.linspace(0, 1, ECE_BINS + 1, device=device)[1:-1]  # the inner bin edges

    def add(self, logits, labels):
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

    def sums(self):
        return [self.nll.clone(), self.brier.clone(), self.count.clone(), self.confidence.clone(), self.right.clone()]

    @staticmethod
    def results(nll, brier, count, confidence, right, *, count_all):
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

    def __init__(self, device, predict):
        self.predict = predict
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        self.values = torch.zeros(5, dtype=dtype, device=device)  # squared error, absolute error, y, y^2, count

    def add(self, outputs, targets):
        error = (self.predict(outputs.float()) - targets).to(self.values.dtype)
        y = targets.to(self.values.dtype)
        self.values += torch.stack([error.square().sum(), error.abs().sum(), y.sum(), y.square().sum(),
                                    torch.tensor(float(y.numel()), dtype=y.dtype, device=y.device)])

    def sums(self):
        return [self.values.clone()]

    @staticmethod
    def results(values, *, count_all):
        squared, absolute, y_sum, y_squares, n = values.tolist()
        n = max(n, 1)
        spread = y_squares - y_sum * y_sum / n  # sum (y - mean y)^2
        return {RMSE: math.sqrt(squared / n), MAE: absolute / n, R2: 1 - squared / spread if spread > 0 else math.nan}


def per_class_accuracy(confusion):
    """Fraction of each class's samples predicted as that class (the recall), from confusion[true, predicted];
    None for a class the split has no sample of."""
    totals = confusion.sum(dim=1).tolist()
    return [None if total == 0 else confusion[i, i].item() / total for i, total in enumerate(totals)]
