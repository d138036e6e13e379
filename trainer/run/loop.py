"""One epoch of training and one pass of evaluation. Metrics are summed on the device and read back only
every `log_every` steps and at the end, because every `.item()` waits for the device to finish."""
from __future__ import annotations

import functools
import inspect
import time
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from trainer.metrics import GRAD_NORM_STEP, TRAIN_STEP_LOSS
from trainer.run.divergence import check_finite
from trainer.runtime import CPU, FULL

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from torch import nn

    from trainer.losses import Objective
    from trainer.metrics.running import RunningMetrics
    from trainer.optim import Schedule
    from trainer.run.interrupt import StopOnSignal
    from trainer.runtime import Precision, Runtime


def optimizer_step(model: nn.Module, objective: Objective, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                   y: torch.Tensor, precision: Precision = FULL, *, clip: float | None = None,
                   measure: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Forward, backward and update for one batch; returns the batch loss, the logits before the update and, with
    `measure`, the global L2 norm of the gradients before the update (and before clipping them to `clip`; None
    without `measure`), all on the device. The norm reads every gradient once, a tenth of a millisecond step (the
    MLP at batch 4 on a CPU): it is measured only where it is read (see train_one_epoch), and for clipping.

    An optimizer whose step needs a closure (LBFGS: it re-evaluates the loss several times) gets one; each
    evaluation's gradients are clipped (the ones the optimizer reads), the first one's norm is reported. Any other
    optimizer is stepped as a hand-written loop steps it: the same ops in the same order, without the closure's
    machinery, which is a visible share of a millisecond step.
    """
    first = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(x)
            loss = objective(logits, y)
        precision.backward(loss)
        precision.unscale(optimizer)  # the true gradients, for their norm and for clipping
        norm = gradient_norm(optimizer, clip) if measure or clip is not None else None
        if not first:
            first["loss"], first["logits"], first["norm"] = loss.detach(), logits.detach(), norm if measure else None
        return loss

    if precision.scaler is None and not needs_closure(optimizer):
        closure()
        optimizer.step()
    else:
        precision.step(optimizer, closure)
    return first["loss"], first["logits"], first["norm"]


@functools.cache
def _step_needs_closure(kind: type) -> bool:
    closure = inspect.signature(kind.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether the optimizer's `step` requires a closure (LBFGS's does; torch's other optimizers take one optionally)."""
    return _step_needs_closure(type(optimizer))


def gradient_norm(optimizer: torch.optim.Optimizer, clip: float | None = None) -> torch.Tensor:
    """The global L2 norm of the gradients the optimizer is about to use, as a tensor on the device (no sync);
    with `clip`, the gradients are scaled down in place so that their norm is at most `clip`."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not params:  # no parameter took part in the loss
        return torch.zeros((), device=optimizer.param_groups[0]["params"][0].device)
    # what torch.nn.utils.get_total_norm computes, without its per-call grouping by device and dtype (all our
    # gradients share one device): at small batches that bookkeeping adds a third to the cost of the norms
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm([p.grad for p in params])))
    if clip is not None:
        torch.nn.utils.clip_grads_with_norm_(params, clip, norm)
    return norm


def train_one_epoch(model: nn.Module, batches: Iterable[Sequence[torch.Tensor]], *, objective: Objective,
                    optimizer: torch.optim.Optimizer, schedule: Schedule, metrics: RunningMetrics,
                    runtime: Runtime = CPU, start_step: int = 0, total_steps: int | None = None, desc: str = "train",
                    log_every: int = 50, on_log: Callable[[int, dict[str, float]], None] | None = None,
                    stop: StopOnSignal | None = None, clip: float | None = None, step_offset: int = 0) -> int:
    """Train on `batches` (the epoch's batches after the first `start_step`), adding to `metrics`; `clip` is
    trainer.gradient_clip_val. Returns the epoch's step count reached: less than `total_steps` when
    `stop.requested()`.

    Steps are counted over the whole run: `step_offset` is the number trained before this epoch. Every `log_every`
    steps of the run (so also in epochs shorter than `log_every`) the batch loss and gradient norm are read back (the
    one sync point): the loss checked for being finite and both handed to
    `on_log(global step, {TRAIN_STEP_LOSS: loss, GRAD_NORM_STEP: norm})`, and the progress bar shows the running loss
    and accuracy and the samples per second.

    The gradient norm is measured at those log steps and at the epoch's last step (`total_steps`), for the epoch's
    mean and max in `metrics`: the same steps in every run (clipped, resumed or not), every epoch has one.
    """
    model.train()
    step, seen, started = start_step, metrics.count, time.perf_counter()
    bar = tqdm(batches, desc=desc, total=total_steps, initial=start_step, disable=not runtime.show_progress,
               leave=False, dynamic_ncols=True, unit="batch")
    for x, y in bar:
        x, y = runtime.to_device(x, y)
        logs = (step_offset + step + 1) % log_every == 0
        loss, logits, norm = optimizer_step(model, objective, optimizer, x, y, runtime.precision, clip=clip,
                                            measure=logs or step + 1 == total_steps)
        schedule.after_batch()
        metrics.update(loss, logits, y, grad_norm=norm)
        step += 1
        # log: a sync point, so only every log_every steps of the run
        if logs:
            value, norm = torch.stack([loss.float(), norm.float()]).tolist()
            check_finite("training loss", value, step)
            if on_log is not None:
                on_log(step_offset + step, {TRAIN_STEP_LOSS: value, GRAD_NORM_STEP: norm})
            show_running(bar, metrics, seen=seen, started=started)
        if stop is not None and stop.requested():
            break
    bar.close()
    return step


def show_running(bar: tqdm, metrics: RunningMetrics, *, seen: int, started: float) -> None:
    """The running loss and accuracy and the samples per second since `started` (`seen` samples then), in the bar's
    postfix: shown at its next timed refresh, because forcing one per log step costs more than the step."""
    if not bar.disable:
        rate = (metrics.count - seen) / max(time.perf_counter() - started, 1e-9)
        bar.set_postfix({**metrics.running(), "samples/s": f"{rate:.0f}"}, refresh=False)


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Iterable[Sequence[torch.Tensor]], *, objective: Objective,
             runtime: Runtime = CPU, desc: str = "", show_every: int = 20, keep_outputs: bool = False) -> dict:
    """Returns {"loss", "acc", "confusion", NLL, BRIER, ECE, "calibration"} over the loader (the probabilities are
    the objective's `log_probabilities`), with the model in eval mode and no autograd. The bar shows the running
    loss and accuracy every `show_every` batches. `keep_outputs`: also "logits" and "labels" of every sample, in
    the loader's order, on the CPU."""
    model.eval()
    metrics = objective.new_metrics(runtime.device, evaluation=True)
    outputs = []
    bar = tqdm(loader, desc=desc, disable=not runtime.show_progress, leave=False, dynamic_ncols=True)
    for batch, (x, y) in enumerate(bar, start=1):
        x, y = runtime.to_device(x, y)
        with runtime.precision.autocast():
            logits = model(x)
            loss = objective(logits, y)
        metrics.update(loss, logits, y)
        if keep_outputs:
            outputs.append((logits, y))
        if not bar.disable and batch % show_every == 0:
            bar.set_postfix(metrics.running(), refresh=False)
    result = metrics.compute()
    if keep_outputs and outputs:
        logits, labels = zip(*outputs)
        result["logits"], result["labels"] = torch.cat(logits).float().cpu(), torch.cat(labels).cpu()
    return result
