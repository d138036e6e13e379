"""One epoch of training and one pass of evaluation. Metrics are summed on the device and read back only
every `log_every` steps and at the end, because every `.item()` waits for the device to finish."""
import torch
from tqdm import tqdm

from trainer import distributed
from trainer.precision import FULL


class RunningMetrics:
    """Sample-weighted loss and accuracy (argmax of the logits) over a pass, kept on the device.

    A step only keeps its batch's loss, logits and labels; every `WINDOW` batches (and when the batch size changes)
    they are reduced on the device in a few ops, because at small batches each extra op per step is a visible share
    of the step. Nothing here waits for the device until a value is read.
    """

    WINDOW = 32

    def __init__(self, device):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0
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
        if self.pending:
            losses, logits, labels = zip(*self.pending)
            self.loss_sum += torch.stack(losses).sum() * self.pending_size  # a batch loss is its samples' mean
            self.correct += (torch.cat(logits).argmax(dim=1) == torch.cat(labels)).sum()
            self.pending = []

    def accuracy(self):
        """This process's running accuracy (a sync point)."""
        self._reduce()
        return self.correct.item() / max(self.count, 1)

    def compute(self):
        """{"loss", "acc"} over every sample seen, by all ranks under torchrun."""
        self._reduce()
        count = torch.tensor(self.count, device=self.correct.device)
        loss_sum, correct, count = distributed.sum_across_ranks(self.loss_sum.clone(), self.correct.clone(), count)
        count = max(count.item(), 1)
        return {"loss": loss_sum.item() / count, "acc": correct.item() / count}


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


def train_one_epoch(model, objective, optimizer, loader, device, schedule, on_step, log_every, progress, desc,
                    precision=FULL, memory_format=torch.preserve_format):
    """Returns the epoch's {"loss", "acc"}. `on_step(step, loss_value)` is called every `log_every` steps."""
    model.train()
    metrics = RunningMetrics(device)
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for step, (x, y) in enumerate(bar, start=1):
        x = x.to(device, non_blocking=True, memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        # forward backward update
        loss, logits = optimizer_step(model, objective, optimizer, x, y, precision)
        schedule.after_batch()
        metrics.update(loss, logits, y)
        # log: a sync point, so only every log_every steps
        if step % log_every == 0:
            value = loss.item()
            on_step(step, value)
            if progress:
                # shown at the bar's next timed refresh: forcing one per log step costs more than the step
                bar.set_postfix(loss=f"{value:.4f}", acc=f"{metrics.accuracy():.3f}", refresh=False)
    return metrics.compute()


@torch.inference_mode()
def evaluate(model, objective, loader, device, progress, desc, precision=FULL, memory_format=torch.preserve_format):
    """Returns {"loss", "acc"} over the loader, with the model in eval mode and no autograd."""
    model.eval()
    metrics = RunningMetrics(device)
    for x, y in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        x = x.to(device, non_blocking=True, memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        with precision.autocast():
            logits = model(x)
            loss = objective(logits, y)
        metrics.update(loss, logits, y)
    return metrics.compute()
