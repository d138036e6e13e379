"""The learning-rate range test (`train mode=lr_find`) and `optimizer.lr=auto`, which runs it before training.

The test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017, section 3.3; fastai's `lr_find`;
Lightning's `LearningRateFinder`) trains the run as `assemble` builds it for at most `lr_find.steps` batches while the
rate grows exponentially from `lr_find.min_lr` to `lr_find.max_lr`, records each batch's loss and its smoothed value,
and stops once the smoothed loss has diverged: above DIVERGED times its lowest value (fastai's and Lightning's rule).

The suggestion is the middle of the loss's fall: the first rate at which the smoothed loss has come down half the
way from where it started to its lowest, among the points left after the first tenth and the last five (as fastai
leaves them out), rounded to two significant digits. It aims where the steepest-slope rule aims (Lightning,
torch-lr-finder, fastai's `steep`: the middle of a sigmoid-like fall is its steepest point) but finds it by level,
not by differentiating a noisy curve, so a wiggle cannot move it (Lightning issues #1767 and #21141,
torch-lr-finder #106), and it reads the level of the minimum, which is steady, not the rate at it, which wanders
along the noisy floor ("the minimum divided by ten"). A nan tail cannot move it.

Measured on the default task with every optimizer (docs/compare.md, "Fair learning rates"): fastai's `valley` rule,
which losslab used before, chose rates 3 to 20 times below the optimizers' own defaults and lost to them. The
curve there falls only across its last decade or two, and the longest stretch of falling smoothed loss that
`valley` takes the middle of began in the flat part at the lowest rates, where the smoothed loss drifts down by noise:
the middle sat about a decade below the fall, and moved with lr_find.min_lr (1e-7 -> 1e-6 raised it 1.5 to 2 times).
The middle of the fall does not depend on where the test starts. The test is also longer now: 100 batches over eight
decades tried each rate for a dozen batches per decade; 200 over seven (from 1e-6) for some thirty. And the smoothing
is lighter: fastai's 0.98 averages some fifty batches, a decade and a half of rate in this test, so the smoothed
curve fell long after the batch losses did; 0.9 averages some ten. `optimizer=rprop` is refused: its rate is only
its first step size, which it then adapts per weight, so the test's growing rate never reaches it.

`optimizer.lr=auto` leaves no trace on the run: the test trains its own assembly, and the real run is assembled
anew afterwards from a copy of the config holding the chosen rate. `assemble` reseeds every generator from `seed`, so
the run's initial weights, data order and random streams are those of `optimizer.lr=<that rate>`, bit for bit.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from trainer.config import override_key
from trainer.data import epoch_batches
from trainer.errors import UserError
from trainer.logs import log
from trainer.metrics import CHOSEN_LR, TUNE_BUDGET, TUNE_EPOCHS
from trainer.run.assemble import assemble
from trainer.run.loop import optimizer_step
from trainer.runtime import distributed

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    import torch
    from omegaconf import DictConfig

    from trainer.run.rundir import Place

AUTO, TUNE = "auto", "tune"  # optimizer.lr=auto (the range test), optimizer.lr=tune (trainer/run/lr_tune.py)
SMOOTHING = 0.9      # the exponential moving average of the batch loss (bias-corrected): some ten batches
DIVERGED = 4.0       # stop once the smoothed loss exceeds this many times its lowest value (fastai, Lightning)
SKIP_END = 5         # as fastai, the first tenth of the points and the last five are left out of the choice
RULE = "the middle of the fall: the first rate at which the smoothed loss is half the way down to its lowest"
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


def with_lr(cfg: DictConfig, lr: float) -> DictConfig:
    """A copy of the config with optimizer.lr set; a scheduler that reads it (onecycle's max_lr) follows."""
    cfg = copy.deepcopy(cfg)
    cfg.optimizer.lr = lr
    return cfg


# optimizers whose rate is only the first step size, adapted per weight from there: changing it mid-test changes nothing
FIRST_STEP_ONLY = ("torch.optim.Rprop",)


def check_meaningful(cfg: DictConfig) -> None:
    """Before any work: an optimizer that searches its own step size, or reads the rate only at its first step, makes
    the test meaningless."""
    search = cfg.optimizer.get("line_search_fn")
    if search:
        raise UserError(f"the learning-rate range test means nothing for an optimizer that finds its own step by line "
                        f"search (optimizer.line_search_fn={search}): set optimizer.lr to a number instead, e.g. "
                        "optimizer.lr=1 for lbfgs")
    if cfg.optimizer.get("_target_") in FIRST_STEP_ONLY:
        raise UserError(f"the learning-rate range test means nothing for {cfg.optimizer._target_}: its rate is only the "
                        "first step size, which it then adapts per weight, so the test's growing rate never reaches "
                        "it: use optimizer.lr=tune, or a number, e.g. optimizer.lr=0.001")


def settle_lr(cfg: DictConfig, *, resume: dict | None, run_dir: str | Path) -> tuple[DictConfig, dict[str, float]]:
    """(config to train, what metrics.json records of the choice: {} for a rate given as a number). With
    optimizer.lr=auto or tune a resumed run keeps the rate stored in its checkpoint (the search is not run again: it
    would see trained weights); a new one runs the range test (auto: lr_find.json and lr_find.png in `run_dir`) or
    the search (tune: trainer/run/lr_tune.py, lr_tune.json and lr_tune.png) and trains at the rate chosen."""
    if cfg.optimizer.lr not in (AUTO, TUNE):
        return cfg, {}
    if resume is not None:
        lr = resume["config"]["optimizer"]["lr"]
        say(f"optimizer.lr={cfg.optimizer.lr}: resuming at the rate chosen when the run started, {lr:g}")
        return with_lr(cfg, lr), {CHOSEN_LR: lr}
    if cfg.optimizer.lr == TUNE:
        from trainer.run.lr_tune import tune, write as write_search  # lr_tune builds on this module

        search = tune(cfg)
        write_search(search, run_dir)
        say(f"optimizer.lr=tune: {search.chosen:g} is the best of {len(search.trials)} trials on {search.metric} "
            f"({search.epochs_trained} of {search.budget_epochs} epochs trained); training at it")
        return with_lr(cfg, search.chosen), {CHOSEN_LR: search.chosen, TUNE_BUDGET: search.budget_epochs,
                                             TUNE_EPOCHS: search.epochs_trained}
    check_meaningful(cfg)
    test = range_test(cfg)
    write(test, run_dir)
    say(f"optimizer.lr=auto: the range test suggests {test.suggestion:g} ({test.stopped}); training at it")
    return with_lr(cfg, test.suggestion), {CHOSEN_LR: test.suggestion}


def run_lr_find(cfg: DictConfig, place: Place, *, overrides: Sequence[str] = ()) -> dict[str, object]:
    """mode=lr_find: run the test, write lr_find.json and lr_find.png into `place`, print the suggestion and how to
    use it."""
    run_dir = place.run_dir
    check_meaningful(cfg)
    test = range_test(cfg)
    write(test, run_dir)
    say(f"suggested learning rate {test.suggestion:g} by the rule: {RULE} ({test.stopped}); "
        f"{Path(run_dir) / (FILE_NAME + '.png')} shows the curve\nto train at it: {command_line(test)}")
    return asdict(test)


def say(line: str) -> None:
    if distributed.is_main():  # under torchrun every rank runs the test; one prints
        log.info(line)


def range_test(cfg: DictConfig) -> RangeTest:
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


def cycle(loader: Iterable[Sequence[torch.Tensor]], seed: int) -> Iterator[Sequence[torch.Tensor]]:
    """The training batches of epoch 1, 2, 3, ... in the run's own order, for as long as the test needs."""
    for epoch in itertools.count(1):
        yield from epoch_batches(loader, seed, epoch)


def mean_over_ranks(loss: torch.Tensor) -> float:
    """The batch loss as a float, averaged over the ranks of a torchrun run, so every rank suggests the same rate
    (a sync every step: acceptable for a test of a hundred batches)."""
    total = loss.detach().float().clone()
    distributed.sum_across_ranks(total)
    return total.item() / distributed.world_size()


class Smoothed:
    """The bias-corrected exponential moving average of the batch losses, and whether it has diverged."""

    def __init__(self):
        self.average, self.values, self.best = 0.0, [], math.inf

    def add(self, loss: float) -> None:
        self.average = SMOOTHING * self.average + (1 - SMOOTHING) * loss
        self.values.append(self.average / (1 - SMOOTHING ** (len(self.values) + 1)))
        if self.values[-1] < self.best:
            self.best = self.values[-1]

    def diverged(self) -> bool:
        last = self.values[-1]
        return not math.isfinite(last) or last > DIVERGED * self.best


def suggest(rates: Sequence[float], smoothed: Sequence[float]) -> float:
    """The first rate at which the smoothed loss is half the way down from its first value to its lowest, among the
    points left after dropping the first tenth and the last SKIP_END, rounded to two significant digits."""
    start, end = len(rates) // 10, len(rates) - SKIP_END
    points = [(rate, loss) for rate, loss in zip(rates[start:end], smoothed[start:end]) if math.isfinite(loss)]
    if len(points) < 2:
        raise UserError(f"the learning-rate range test diverged after {len(rates)} batches, at rate {rates[-1]:.2g}, "
                        "leaving no curve to read: lower lr_find.min_lr or raise lr_find.steps")
    return float(f"{middle_of_fall(points):.2g}")


def middle_of_fall(points: Sequence[tuple[float, float]]) -> float:
    """The first rate of [(rate, smoothed loss)] whose loss is at or below the level halfway between the first loss
    and the lowest (the first rate itself when the loss never falls)."""
    first, lowest = points[0][1], min(loss for _, loss in points)
    halfway = first - (first - lowest) / 2
    return next(rate for rate, loss in points if loss <= halfway)


def write(test: RangeTest, run_dir: str | Path) -> None:
    """lr_find.json and lr_find.png in the run dir (rank 0 only)."""
    if not distributed.is_main():
        return
    from trainer.run.figures import lr_find_figure

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / f"{FILE_NAME}.json").write_text(json.dumps(asdict(test), indent=2) + "\n")
    nan_for_none = lambda values: [math.nan if value is None else value for value in values]
    figure = lr_find_figure(test.rates, nan_for_none(test.losses), nan_for_none(test.smoothed),
                            suggestion=test.suggestion, rule="middle of the fall")
    figure.savefig(run_dir / f"{FILE_NAME}.png", dpi=110)


def command_line(test: RangeTest) -> str:
    """`train` with this command's overrides, minus mode, optimizer.lr and the test's own lr_find.* settings, plus
    the suggested rate."""
    from hydra.core.hydra_config import HydraConfig

    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    kept = [o for o in overrides
            if override_key(o) not in ("mode", "optimizer.lr") and not override_key(o).startswith("lr_find.")]
    return " ".join(["train", *kept, f"optimizer.lr={test.suggestion:g}"])
