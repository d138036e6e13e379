"""One epoch of training and one pass of evaluation. Metrics are summed on the device and read back only
every `log_every` steps and at the end, because every `.item()` waits for the device to finish."""
import torch
from tqdm import tqdm


class RunningMetrics:
    """Sample-weighted loss and accuracy (argmax of the logits) over a pass, kept on the device."""

    def __init__(self, device):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0

    def update(self, loss, logits, labels):
        n = labels.shape[0]
        self.loss_sum += loss.detach() * n  # the batch loss is the mean of its per-sample losses
        self.correct += (logits.argmax(dim=1) == labels).sum()
        self.count += n

    def compute(self):
        count = max(self.count, 1)
        return {"loss": self.loss_sum.item() / count, "acc": self.correct.item() / count}


def optimizer_step(model, objective, optimizer, x, y):
    """Forward, backward and update for one batch; returns the batch loss and logits before the update.

    Every torch optimizer accepts a closure; LBFGS needs one because it re-evaluates the loss several times.
    """
    first = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = objective(logits, y)
        loss.backward()
        if not first:
            first["loss"], first["logits"] = loss.detach(), logits.detach()
        return loss

    optimizer.step(closure)
    return first["loss"], first["logits"]


def train_one_epoch(model, objective, optimizer, loader, device, schedule, on_step, log_every, progress, desc):
    """Returns the epoch's {"loss", "acc"}. `on_step(step, loss_value)` is called every `log_every` steps."""
    model.train()
    metrics = RunningMetrics(device)
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for step, (x, y) in enumerate(bar, start=1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        # forward backward update
        loss, logits = optimizer_step(model, objective, optimizer, x, y)
        schedule.after_batch()
        metrics.update(loss, logits, y)
        # log: a sync point, so only every log_every steps
        if step % log_every == 0:
            value = loss.item()
            on_step(step, value)
            bar.set_postfix(loss=f"{value:.4f}", acc=f"{metrics.correct.item() / metrics.count:.3f}")
    return metrics.compute()


@torch.inference_mode()
def evaluate(model, objective, loader, device, progress, desc):
    """Returns {"loss", "acc"} over the loader, with the model in eval mode and no autograd."""
    model.eval()
    metrics = RunningMetrics(device)
    for x, y in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        metrics.update(objective(logits, y), logits, y)
    return metrics.compute()
