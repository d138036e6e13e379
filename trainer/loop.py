"""One epoch of training and one pass of evaluation. Metrics are summed on the device and read back only
every `log_every` steps and at the end, because every `.item()` waits for the device to finish."""
import torch
from tqdm import tqdm

from trainer import distributed
from trainer.precision import FULL


class RunningMetrics:
    """Sample-weighted loss and accuracy (argmax of the logits) over a pass, kept on the device.

    A step only records its batch's loss and hits (three small ops); they are summed when read, because at small
    batches every extra op per step is a visible share of the step.
    """

    def __init__(self, device):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0
        self.losses, self.hits = [], []

    def update(self, loss, logits, labels):
        n = labels.shape[0]
        self.losses.append(loss.detach() * n)  # the batch loss is the mean of its per-sample losses
        self.hits.append(logits.argmax(dim=1) == labels)
        self.count += n

    def _fold(self):
        if self.losses:
            self.loss_sum += torch.stack(self.losses).sum()
            self.correct += torch.cat(self.hits).sum()
            self.losses, self.hits = [], []

    def accuracy(self):
        """This process's running accuracy (a sync point)."""
        self._fold()
        return self.correct.item() / max(self.count, 1)

    def compute(self):
        """{"loss", "acc"} over every sample seen, by all ranks under torchrun."""
        self._fold()
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
                bar.set_postfix(loss=f"{value:.4f}", acc=f"{metrics.accuracy():.3f}")
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
