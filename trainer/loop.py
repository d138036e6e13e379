"""One epoch of training and one pass of evaluation. Metrics are summed on the device and read back only
every `log_every` steps and at the end, because every `.item()` waits for the device to finish."""
import math

import torch
from tqdm import tqdm


class RunningMetrics:
    """Sample-weighted loss and accuracy (argmax of the logits) over a pass, kept on the device; with
    `confusion=True` also the confusion matrix: confusion[true, predicted] counts samples."""

    def __init__(self, device, confusion=False):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0
        self.track_confusion, self.confusion = confusion, None

    def update(self, loss, logits, labels):
        n = labels.shape[0]
        predicted = logits.argmax(dim=1)
        self.loss_sum += loss.detach() * n  # the batch loss is the mean of its per-sample losses
        self.correct += (predicted == labels).sum()
        self.count += n
        if self.track_confusion:
            classes = self.classes = logits.shape[1]
            if self.confusion is None:
                self.confusion = torch.zeros(classes * classes, dtype=torch.long, device=labels.device)
            # one bincount per batch on the device: the pair (true, predicted) as the flat index true * C + predicted
            self.confusion += torch.bincount(labels * classes + predicted, minlength=classes * classes)

    def state_dict(self):
        # a run interrupted mid-epoch resumes with the sums of the steps it had done
        return {"loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(), "count": self.count}

    def load_state_dict(self, state):
        self.loss_sum.copy_(state["loss_sum"])
        self.correct.copy_(state["correct"])
        self.count = state["count"]

    def compute(self):
        count = max(self.count, 1)
        result = {"loss": self.loss_sum.item() / count, "acc": self.correct.item() / count}
        if self.confusion is not None:
            result["confusion"] = self.confusion.view(self.classes, self.classes).cpu()
        return result


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


class NonFiniteLoss(Exception):
    def __init__(self, step, value):
        super().__init__(f"loss {value} at step {step}")
        self.step, self.value = step, value


def train_one_epoch(model, objective, optimizer, batches, device, schedule, metrics, on_step=None, log_every=50,
                    stop=None, bar=None):
    """Train on `batches`, adding to `metrics`; `bar` says how the progress bar starts (tqdm's desc, total,
    initial, disable; none by default). Returns the epoch's step count reached: less than the total when
    `stop.requested()`. `on_step(step, loss_value)` is called every `log_every` steps, where the loss is read
    back anyway; that is also where a non-finite loss is noticed."""
    model.train()
    bar = bar or {"disable": True}
    step = bar.get("initial", 0)
    progress = tqdm(batches, leave=False, dynamic_ncols=True, **bar)
    for x, y in progress:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        # forward backward update
        loss, logits = optimizer_step(model, objective, optimizer, x, y)
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
            progress.set_postfix(loss=f"{value:.4f}", acc=f"{metrics.correct.item() / metrics.count:.3f}")
        if stop is not None and stop.requested():
            break
    progress.close()
    return step


@torch.inference_mode()
def evaluate(model, objective, loader, device, progress, desc):
    """Returns {"loss", "acc", "confusion"} over the loader, with the model in eval mode and no autograd."""
    model.eval()
    metrics = RunningMetrics(device, confusion=True)
    for x, y in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        metrics.update(objective(logits, y), logits, y)
    return metrics.compute()
