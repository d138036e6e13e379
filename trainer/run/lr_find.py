"""The learning-rate range test (`train mode=lr_find`) and `optimizer.lr=auto`, which runs it before training.

The test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017, section 3.3; fastai's `lr_find`;
Lightning's `LearningRateFinder`) trains the run as `assemble` builds it for at most `lr_find.steps` batches while the
rate grows exponentially from `lr_find.min_lr` to `lr_find.max_lr`, records each batch's loss and its smoothed value,
and stops once the smoothed loss has diverged: above DIVERGED times its lowest value (fastai's and Lightning's rule).

The suggestion is fastai's `valley` rule, its default since fastai 2.4: the longest stretch over which the smoothed
loss keeps falling (the longest decreasing subsequence of the curve), and the rate halfway along it. We take it over
the two other documented rules because of how their users say they fail: the steepest slope (Lightning, the
torch-lr-finder package) differentiates a noisy curve, so a spike or an early wiggle moves it by orders of magnitude
(Lightning issues #1767 and #21141, torch-lr-finder #106); "the minimum divided by ten" (fastai's old default) hangs
on where a noisy minimum falls and on a fixed factor. The valley reads the shape of the whole descent and lands where
the loss falls steadily, away from both the flat start (too slow) and the blow-up (too fast), and a nan tail cannot
move it (fastai #3477). As fastai does, the first tenth of the points and the last five are left out before choosing.

`optimizer.lr=auto` leaves no trace on the run: the test trains its own assembly, and the real run is assembled
anew afterwards from a copy of the config holding the chosen rate. `assemble` reseeds every generator from `seed`, so
the run's initial weights, data order and random streams are those of `optimizer.lr=<that rate>`, bit for bit.
"""
import copy
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trainer.config import override_key
from trainer.data import epoch_batches
from trainer.errors import UserError
from trainer.logs import log
from trainer.run.assemble import assemble
from trainer.run.loop import optimizer_step
from trainer.runtime import distributed

AUTO = "auto"        # optimizer.lr=auto
SMOOTHING = 0.98     # the exponential moving average of the batch loss (bias-corrected), as fastai and Lightning
DIVERGED = 4.0       # stop once the smoothed loss exceeds this many times its lowest value (fastai, Lightning)
SKIP_END = 5         # fastai's valley leaves out the first tenth of the points and the last five
RULE = "valley (fastai): halfway along the longest stretch over which the smoothed loss keeps falling"
FILE_NAME = "lr_find"


@dataclass
class RangeTest:
    """What the test saw and what it suggests; lr_find.json holds it."""
    rates: list
    losses: list       # each batch's loss (null where it was not a finite number)
    smoothed: list     # their bias-corrected exponential moving average (likewise)
    suggestion: float  # rounded to two significant digits: the printed command line gives exactly this rate
    rule: str
    stopped: str       # why the test ended


def with_lr(cfg, lr):
    """A copy of the config with optimizer.lr set; a scheduler that reads it (onecycle's max_lr) follows."""
    cfg = copy.deepcopy(cfg)
    cfg.optimizer.lr = lr
    return cfg


def check_meaningful(cfg):
    """Before any work: an optimizer that searches its own step size makes the test meaningless."""
    search = cfg.optimizer.get("line_search_fn")
    if search:
        raise UserError(f"the learning-rate range test means nothing for an optimizer that finds its own step by line "
                        f"search (optimizer.line_search_fn={search}): set optimizer.lr to a number instead, e.g. "
                        "optimizer.lr=1 for lbfgs")


def settle_lr(cfg, *, resume, run_dir):
    """(config to train, the rate optimizer.lr=auto chose or None). A resumed auto run keeps the rate stored in its
    checkpoint (the test is not run again: it would see trained weights); a new one runs the test, writes
    lr_find.json and lr_find.png to `run_dir`, and trains at its suggestion."""
    if cfg.optimizer.lr != AUTO:
        return cfg, None
    if resume is not None:
        lr = resume["config"]["optimizer"]["lr"]
        say(f"optimizer.lr=auto: resuming at the rate the range test chose when the run started, {lr:g}")
        return with_lr(cfg, lr), lr
    check_meaningful(cfg)
    test = range_test(cfg)
    write(test, run_dir)
    say(f"optimizer.lr=auto: the range test suggests {test.suggestion:g} ({test.stopped}); training at it")
    return with_lr(cfg, test.suggestion), test.suggestion


def run_lr_find(cfg, place, *, overrides=()):
    """mode=lr_find: run the test, write lr_find.json and lr_find.png into `place`, print the suggestion and how to
    use it."""
    run_dir = place.run_dir
    check_meaningful(cfg)
    test = range_test(cfg)
    write(test, run_dir)
    say(f"suggested learning rate {test.suggestion:g} by the {RULE} ({test.stopped}); "
        f"{Path(run_dir) / (FILE_NAME + '.png')} shows the curve\nto train at it: {command_line(test)}")
    return asdict(test)


def say(line):
    if distributed.is_main():  # under torchrun every rank runs the test; one prints
        log.info(line)


def range_test(cfg):
    """Run the test on the run `cfg` describes (assembled at lr_find.min_lr, never stepping its scheduler)."""
    settings = cfg.lr_find
    parts = assemble(with_lr(cfg, settings.min_lr))
    parts.on_epoch_start(1)
    # every parameter group keeps its share of the rate (a backbone trained at a tenth of the head's, say)
    shares = [group["lr"] / parts.optimizer.param_groups[0]["lr"] for group in parts.optimizer.param_groups]
    rates, losses = [], []
    curve = Smoothed()
    bar = tqdm(total=settings.steps, desc="lr_find", disable=not parts.runtime.show_progress, leave=False)
    for step, (x, y) in enumerate(itertools.islice(cycle(parts.loaders.train, parts.cfg.seed), settings.steps)):
        rate = settings.min_lr * (settings.max_lr / settings.min_lr) ** (step / max(settings.steps - 1, 1))
        for group, share in zip(parts.optimizer.param_groups, shares):
            group["lr"] = rate * share
        x, y = parts.runtime.to_device(x, y)
        loss, _, _ = optimizer_step(parts.train_net, parts.objective, parts.optimizer, x, y, parts.runtime.precision,
                                    clip=cfg.trainer.gradient_clip_val)
        rates.append(rate)
        losses.append(mean_over_ranks(loss))
        curve.add(losses[-1])
        bar.update()
        if curve.diverged():
            break
    bar.close()
    stopped = (f"stopped at rate {rates[-1]:.2g}, where the smoothed loss diverged" if curve.diverged()
               else f"ran all lr_find.steps={settings.steps} batches up to lr_find.max_lr={settings.max_lr:g}")
    finite = lambda values: [value if math.isfinite(value) else None for value in values]  # JSON has no nan
    return RangeTest(rates=rates, losses=finite(losses), smoothed=finite(curve.values),
                     suggestion=suggest(rates, curve.values), rule=RULE, stopped=stopped)


def cycle(loader, seed):
    """The training batches of epoch 1, 2, 3, ... in the run's own order, for as long as the test needs."""
    for epoch in itertools.count(1):
        yield from epoch_batches(loader, seed, epoch)


def mean_over_ranks(loss):
    """The batch loss as a float, averaged over the ranks of a torchrun run, so every rank suggests the same rate
    (a sync every step: acceptable for a test of a hundred batches)."""
    total = loss.detach().float().clone()
    distributed.sum_across_ranks(total)
    return total.item() / distributed.world_size()


class Smoothed:
    """The bias-corrected exponential moving average of the batch losses, and whether it has diverged."""

    def __init__(self):
        self.average, self.values, self.best = 0.0, [], math.inf

    def add(self, loss):
        self.average = SMOOTHING * self.average + (1 - SMOOTHING) * loss
        self.values.append(self.average / (1 - SMOOTHING ** (len(self.values) + 1)))
        if self.values[-1] < self.best:
            self.best = self.values[-1]

    def diverged(self):
        last = self.values[-1]
        return not math.isfinite(last) or last > DIVERGED * self.best


def suggest(rates, smoothed):
    """The valley rule on the points left after dropping the first tenth and the last SKIP_END, rounded to two
    significant digits."""
    start, end = len(rates) // 10, len(rates) - SKIP_END
    points = [(rate, loss) for rate, loss in zip(rates[start:end], smoothed[start:end]) if math.isfinite(loss)]
    if len(points) < 2:
        raise UserError(f"the learning-rate range test diverged after {len(rates)} batches, at rate {rates[-1]:.2g}, "
                        "leaving no curve to read: lower lr_find.min_lr or raise lr_find.steps")
    rates, losses = zip(*points)
    return float(f"{rates[valley(np.array(losses))]:.2g}")


def valley(losses):
    """fastai's valley: the index halfway along the longest decreasing subsequence of `losses` (its first longest),
    measured from one point before its length back from its end, as fastai does (clipped at the first point)."""
    longest = np.ones(len(losses), dtype=int)  # the longest decreasing subsequence ending at each point
    for i in range(1, len(losses)):
        higher = losses[:i] > losses[i]
        if higher.any():
            longest[i] = longest[:i][higher].max() + 1
    end = int(np.argmax(longest))
    start = max(end - int(longest[end]), 0)
    third = (end - start) / 3
    return start + int(third) + int(third / 2)


def write(test, run_dir):
    """lr_find.json and lr_find.png in the run dir (rank 0 only)."""
    if not distributed.is_main():
        return
    from trainer.run.figures import lr_find_figure

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / f"{FILE_NAME}.json").write_text(json.dumps(asdict(test), indent=2) + "\n")
    nan_for_none = lambda values: [math.nan if value is None else value for value in values]
    figure = lr_find_figure(test.rates, nan_for_none(test.losses), nan_for_none(test.smoothed),
                            suggestion=test.suggestion, rule="valley")
    figure.savefig(run_dir / f"{FILE_NAME}.png", dpi=110)


def command_line(test):
    """`train` with this command's overrides, minus mode, optimizer.lr and the test's own lr_find.* settings, plus
    the suggested rate."""
    from hydra.core.hydra_config import HydraConfig

    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    kept = [o for o in overrides
            if override_key(o) not in ("mode", "optimizer.lr") and not override_key(o).startswith("lr_find.")]
    return " ".join(["train", *kept, f"optimizer.lr={test.suggestion:g}"])
