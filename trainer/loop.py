"""One epoch of training and one pass of evaluation. Metrics are summed on the device and read back only
every `log_every` steps and at the end, because every `.item()` waits for the device to finish."""
import math

import torch
from tqdm import tqdm

from trainer import distributed
from trainer.precision import FULL


class RunningMetrics:
    """Sample-weighted loss and accuracy (argmax of the logits) over a pass, kept on the device; with
    `confusion=True` also the confusion matrix: confusion[true, predicted] counts samples.

    A step only keeps its batch's loss, logits and labels; every `WINDOW` batches (and when the batch size changes)
    they are reduced on the device in a few ops, because at small batches each extra op per step is a visible share
    of the step. Nothing here waits for the device until a value is read.
    """

    WINDOW = 32

    def __init__(self, device, confusion=False):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0
        self.track_confusion, self.confusion = confusion, None
        self.pending, self.pending_size = [], 0  # batches of size pending_size not yet reduced

    def update(self, loss, logits, labels):
        """`loss` and `logits` must need no grad (optimizer_step returns them detached), or they would keep the
        autograd graph alive until the next reduce."""
        n = labels.shape[0]
        if self.pending and (n != self.pending_size or len(self.pending) == self.WINDOW):
            self._reduce()
        self.pending.append((loss, logits, labels))
        self.pending_size = n
        self.count += n

    def _reduce(self):
        if not self.pending:
            return
        losses, logits, labels = zip(*self.pending)
        self.pending = []
        predicted, labels = torch.cat(logits).argmax(dim=1), torch.cat(labels)
        self.loss_sum += torch.stack(losses).sum() * self.pending_size  # a batch loss is its samples' mean
        self.correct += (predicted == labels).sum()
        if self.track_confusion:
            classes = self.classes = logits[0].shape[1]
            if self.confusion is None:
                self.confusion = torch.zeros(classes * classes, dtype=torch.long, device=labels.device)
            # one bincount on the device: the pair (true, predicted) as the flat index true * C + predicted
            self.confusion += torch.bincount(labels * classes + predicted, minlength=classes * classes)

    def running(self):
        """This process's running {"loss", "acc"} for a progress bar (a sync point, and no reduction over ranks:
        only rank 0 draws bars)."""
        self._reduce()
        count = max(self.count, 1)
        return {"loss": f"{self.loss_sum.item() / count:.4f}", "acc": f"{self.correct.item() / count:.3f}"}

    def state_dict(self):
        # a run interrupted mid-epoch resumes with the sums of the steps it had done
        self._reduce()
        return {"loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(), "count": self.count}

    def load_state_dict(self, state):
        self.loss_sum.copy_(state["loss_sum"])
        self.correct.copy_(state["correct"])
        self.count = state["count"]

    def compute(self):
        """{"loss", "acc"} (and "confusion") over every sample seen, by all ranks under torchrun."""
        self._reduce()
        count = torch.tensor(self.count, device=self.correct.device)
        sums = [self.loss_sum.clone(), self.correct.clone(), count]
        if self.confusion is not None:
            sums.append(self.confusion.clone())
        sums = distributed.sum_across_ranks(*sums)
        count = max(sums[2].item(), 1)
        result = {"loss": sums[0].item() / count, "acc": sums[1].item() / count}
        if self.confusion is not None:
            result["confusion"] = sums[3].view(self.classes, self.classes).cpu()
        return result


def optimizer_step(model, objective, optimizer, x, y, precision=FULL):
    """Forward, backward and update for one batch; returns the batch loss and logits before the update.

    Every torch optimizer accepts a closure; LBFGS needs one because it re-evaluates the loss several times.
    """
    first = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(x)
            loss = objective(logits, y)
        precision.backward(loss)
        if not first:
            first["loss"], first["logits"] = loss.detach(), logits.detach()
        return loss

    precision.step(optimizer, closure)
    return first["loss"], first["logits"]


class NonFiniteLoss(Exception):
    def __init__(self, step, value):
        super().__init__(f"loss {value} at step {step}")
        self.step, self.value = step, value


def train_one_epoch(model, objective, optimizer, batches, device, schedule, metrics, on_step=None, log_every=50,
                    stop=None, bar=None, precision=FULL, memory_format=torch.preserve_format):
    """Train on `batches`, adding to `metrics`; `bar` says how the progress bar starts (tqdm's desc, total,
    initial, disable; none by default). Returns the epoch's step count reached: less than the total when
    `stop.requested()`. `on_step(step, loss_value)` is called every `log_every` steps, where the loss is read
    back anyway; that is also where a non-finite loss is noticed."""
    model.train()
    bar = bar or {"disable": True}
    step = bar.get("initial", 0)
    progress = tqdm(batches, leave=False, dynamic_ncols=True, **bar)
    for x, y in progress:
        x = x.to(device, non_blocking=True, memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        # forward backward update
        loss, logits = optimizer_step(model, objective, optimizer, x, y, precision)
        schedule.after_batch()
        metrics.update(loss, logits, y)
        step += 1
        # log: a sync point, so only every log_every steps
        if step % log_every == 0:
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLoss(step, value)
            if on_step is not None:
                on_step(step, value)
            if not progress.disable:
                # shown at the bar's next timed refresh: forcing one per log step costs more than the step
                progress.set_postfix(metrics.running(), refresh=False)
        if stop is not None and stop.requested():
            break
    progress.close()
    return step


@torch.inference_mode()
def evaluate(model, objective, loader, device, progress, desc, precision=FULL, memory_format=torch.preserve_format,
             show_every=20):
    """Returns {"loss", "acc", "confusion"} over the loader, with the model in eval mode and no autograd. The
    bar shows the running loss and accuracy every `show_every` batches."""
    model.eval()
    metrics = RunningMetrics(device, confusion=True)
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for batch, (x, y) in enumerate(bar, start=1):
        x = x.to(device, non_blocking=True, memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        with precision.autocast():
            logits = model(x)
            loss = objective(logits, y)
        metrics.update(loss, logits, y)
        if progress and batch % show_every == 0:
            bar.set_postfix(metrics.running(), refresh=False)
    return metrics.compute()
