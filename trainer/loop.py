"""One epoch of training and one pass of evaluation. Metrics are summed on the device and read back only
every `log_every` steps and at the end, because every `.item()` waits for the device to finish."""
import torch
from tqdm import tqdm

from trainer.device import CPU
from trainer.metrics import TRAIN_STEP_LOSS, RunningMetrics, check_finite
from trainer.precision import FULL


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


def train_one_epoch(model, batches, *, objective, optimizer, schedule, metrics, runtime=CPU, start_step=0,
                    total_steps=None, desc="train", log_every=50, on_log=None, stop=None):
    """Train on `batches` (the epoch's batches after the first `start_step`), adding to `metrics`. Returns the
    epoch's step count reached: less than `total_steps` when `stop.requested()`.

    Every `log_every` steps the batch loss is read back (the one sync point): checked for being finite and handed
    to `on_log(step, {TRAIN_STEP_LOSS: value})`.
    """
    model.train()
    step = start_step
    bar = tqdm(batches, desc=desc, total=total_steps, initial=start_step, disable=not runtime.show_progress,
               leave=False, dynamic_ncols=True)
    for x, y in bar:
        x, y = runtime.to_device(x, y)
        # forward backward update
        loss, logits = optimizer_step(model, objective, optimizer, x, y, runtime.precision)
        schedule.after_batch()
        metrics.update(loss, logits, y)
        step += 1
        # log: a sync point, so only every log_every steps
        if step % log_every == 0:
            value = loss.item()
            check_finite("training loss", value, step)
            if on_log is not None:
                on_log(step, {TRAIN_STEP_LOSS: value})
            if not bar.disable:
                # shown at the bar's next timed refresh: forcing one per log step costs more than the step
                bar.set_postfix(metrics.running(), refresh=False)
        if stop is not None and stop.requested():
            break
    bar.close()
    return step


@torch.inference_mode()
def evaluate(model, loader, *, objective, runtime=CPU, desc="", show_every=20):
    """Returns {"loss", "acc", "confusion"} over the loader, with the model in eval mode and no autograd. The
    bar shows the running loss and accuracy every `show_every` batches."""
    model.eval()
    metrics = RunningMetrics(runtime.device, confusion=True)
    bar = tqdm(loader, desc=desc, disable=not runtime.show_progress, leave=False, dynamic_ncols=True)
    for batch, (x, y) in enumerate(bar, start=1):
        x, y = runtime.to_device(x, y)
        with runtime.precision.autocast():
            logits = model(x)
            loss = objective(logits, y)
        metrics.update(loss, logits, y)
        if not bar.disable and batch % show_every == 0:
            bar.set_postfix(metrics.running(), refresh=False)
    return metrics.compute()
