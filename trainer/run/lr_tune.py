"""`optimizer.lr=tune`: the learning rate chosen as the optimizer-benchmarking literature chooses it for a fair
comparison (Choi et al. 2019, "On Empirical Comparisons of Optimizers for Deep Learning"; Schmidt et al. 2021,
"Descending through a Crowded Valley"): every optimizer and loss gets the same budget, spent searching a log range
of rates, each candidate trained and judged on the validation split; the test split is never seen.

The search is Optuna's: a TPE sampler seeded by `seed` over [lr_tune.min_lr, lr_tune.max_lr] on a log scale,
lr_tune.trials trials of at most lr_tune.epochs epochs each (null: trainer.epochs, the run's own length), and a
successive-halving pruner (Li et al. 2018, ASHA; Optuna's SuccessiveHalvingPruner, reduction factor 3) that stops a
trial whose validation value a third of the way through (then at three times that, ...) is not in the top third of
the trials that got there (Optuna runs trials one after another, so while fewer than three got there: not the
best of them). With
lr_tune.start_at_default=true the first trial is the optimizer's own YAML rate, so the rate chosen is never worse on
validation than the default, at the same budget. A trial's value is the best validation value of its epochs (what
best.pt keeps), the judge the run's own "best" (data.best). Each rate is rounded to two significant digits before its
trial trains, so the chosen one is exactly the rate printed.

As with `optimizer.lr=auto`, the trials train their own assemblies, and the run is then assembled anew at the chosen
rate: bit-identical to typing `optimizer.lr=<that rate>`. lr_tune.json holds every trial (rate, validation value per
epoch, pruned or not), lr_tune.png draws them.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from trainer.config import config_dir, option_of
from trainer.data import epoch_batches
from trainer.errors import UserError
from trainer.metrics import TRAIN, VAL, monitor_for, pass_tags
from trainer.run.assemble import assemble
from trainer.run.divergence import NonFinite, check_finite
from trainer.run.loop import evaluate, train_one_epoch
from trainer.run.lr_find import say, with_lr
from trainer.runtime import distributed

if TYPE_CHECKING:
    import optuna
    from omegaconf import DictConfig

    from trainer.run.assemble import Assembly

FILE_NAME = "lr_tune"
REDUCTION = 3        # the pruner's: a trial goes on past a rung if it is in the top 1/REDUCTION there
COMPLETE, PRUNED, DIVERGED = "complete", "pruned", "diverged"


@dataclass
class Trial:
    number: int
    lr: float
    values: list        # the validation value after each epoch it trained
    state: str          # COMPLETE, PRUNED (stopped by the pruner) or DIVERGED (its loss or weights stopped being finite)
    higher_is_better: bool = True

    @property
    def best(self) -> float | None:
        return None if not self.values else (max if self.higher_is_better else min)(self.values)


@dataclass
class Search:
    """What the search tried and chose; lr_tune.json holds it."""
    trials: list
    chosen: float
    default: float | None   # the optimizer's YAML rate (the first trial with lr_tune.start_at_default)
    metric: str             # the validation metric that judged (acc/val, or data.best's)
    higher_is_better: bool
    budget_epochs: int      # lr_tune.trials x the epochs a trial may train
    epochs_trained: int     # the epochs the trials did train
    method: str


def default_rate(cfg: DictConfig) -> float | None:
    """The rate the optimizer's own YAML gives (optimizer.lr=tune replaced it), None for an optimizer conf/ lacks."""
    from omegaconf import OmegaConf

    option = option_of("optimizer", OmegaConf.to_container(cfg.optimizer))
    if option is None:
        return None
    lr = (yaml.safe_load((config_dir() / "optimizer" / f"{option}.yaml").read_text()) or {}).get("lr")
    return lr if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def check_default_in_range(default: float | None, settings: DictConfig) -> None:
    """With start_at_default the first trial is the optimizer's own rate, which Optuna would silently drop outside
    the searched range, and the promise (never worse on validation than the default) with it.

    Raises:
        UserError: the default rate lies outside [lr_tune.min_lr, lr_tune.max_lr].
    """
    if default is not None and not settings.min_lr <= default <= settings.max_lr:
        raise UserError(f"lr_tune.start_at_default=true tries the optimizer's own rate {default:g} first, outside "
                        f"the range searched ([lr_tune.min_lr={settings.min_lr:g}, lr_tune.max_lr="
                        f"{settings.max_lr:g}]): widen the range to hold it, or set lr_tune.start_at_default=false")


def tune(cfg: DictConfig) -> Search:
    """Search the rate of the run `cfg` describes (its optimizer.lr is replaced in every trial)."""
    try:
        import optuna
    except ImportError:
        raise UserError("optimizer.lr=tune searches with Optuna, which is not installed: pip install 'losslab[sweeps]'"
                        ", or use optimizer.lr=auto") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings, monitor = cfg.lr_tune, monitor_for(cfg.data)
    epochs = settings.epochs or cfg.trainer.epochs
    first_rung = max(1, round(epochs / REDUCTION))  # the pruner's first look: a third of the way through a trial
    study = optuna.create_study(
        direction="maximize" if monitor.higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=min(5, settings.trials)),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=first_rung, reduction_factor=REDUCTION))
    default = default_rate(cfg)
    check_default_in_range(default if settings.start_at_default else None, settings)
    if settings.start_at_default and default is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # stable in Optuna 3
            study.enqueue_trial({"lr": default})
    states = {COMPLETE: optuna.trial.TrialState.COMPLETE, PRUNED: optuna.trial.TrialState.PRUNED,
              DIVERGED: optuna.trial.TrialState.FAIL}
    trials = []
    for number in range(settings.trials):
        asked = study.ask()
        lr = float(f"{asked.suggest_float('lr', settings.min_lr, settings.max_lr, log=True):.2g}")
        found = run_trial(cfg, Trial(number, lr, [], COMPLETE, monitor.higher_is_better), epochs, report=asked)
        study.tell(asked, found.best if found.state == COMPLETE else None, state=states[found.state])
        trials.append(found)
        say(f"optimizer.lr=tune: trial {number + 1}/{settings.trials} at lr {lr:g}: best {monitor.tag} "
            f"{'–' if found.best is None else f'{found.best:.4f}'} in {len(found.values)} epochs ({found.state})")
    return Search(trials=trials, chosen=chosen_rate(trials, monitor.higher_is_better), default=default,
                  metric=monitor.tag, higher_is_better=monitor.higher_is_better,
                  budget_epochs=settings.trials * epochs, epochs_trained=sum(len(t.values) for t in trials),
                  method=f"Optuna TPE (seed {cfg.seed}) over [{settings.min_lr:g}, {settings.max_lr:g}] on a log scale, "
                         f"successive halving from epoch {first_rung} (reduction factor {REDUCTION})")


def run_trial(cfg: DictConfig, trial: Trial, epochs: int, *, report: optuna.trial.Trial) -> Trial:
    """Train the run at trial.lr for up to `epochs` epochs, reporting each epoch's validation value to Optuna's
    trial (`report`), which may prune it."""
    monitor = monitor_for(cfg.data)
    parts = assemble(with_lr(cfg, trial.lr))
    for epoch in range(1, epochs + 1):
        try:
            row = train_and_validate(parts, epoch)
        except NonFinite:
            trial.state = DIVERGED
            return trial
        value = row[monitor.tag]
        if not math.isfinite(value):
            trial.state = DIVERGED
            return trial
        trial.values.append(value)
        report.report(value, epoch)
        if epoch < epochs and report.should_prune():
            trial.state = PRUNED
            return trial
    return trial


def train_and_validate(parts: Assembly, epoch: int) -> dict:
    """One epoch as a run trains it (trainer/run/train.py's fit_epoch: the model's epoch hook, the training steps,
    the validation pass, the schedule), without its records and checkpoints; returns the epoch's train and val
    tags."""
    parts.on_epoch_start(epoch)
    metrics = parts.objective.new_metrics(parts.runtime.device, evaluation=False)
    steps = train_one_epoch(parts.train_net, epoch_batches(parts.loaders.train, parts.cfg.seed, epoch),
                            objective=parts.objective, optimizer=parts.optimizer, schedule=parts.schedule,
                            metrics=metrics, runtime=parts.runtime, total_steps=len(parts.loaders.train),
                            desc=f"lr_tune epoch {epoch}", log_every=parts.cfg.trainer.log_every_n_steps,
                            clip=parts.cfg.trainer.gradient_clip_val)
    trained = metrics.compute()
    check_finite("training loss", trained["loss"], steps)
    val = evaluate(parts.net, parts.loaders.val, objective=parts.objective, runtime=parts.runtime)
    row = {**pass_tags(TRAIN, trained), **pass_tags(VAL, val)}
    parts.schedule.after_epoch(row)
    return row


def chosen_rate(trials: list, higher_is_better: bool) -> float:
    """The rate of the best finished trial (the earliest among equals: the default, when it is as good); the
    lowest rate tried when every trial diverged."""
    finished = [t for t in trials if t.state == COMPLETE and t.best is not None]
    if not finished:
        raise UserError(f"optimizer.lr=tune: none of its {len(trials)} trials finished (every rate diverged or was "
                        "pruned): lower lr_tune.max_lr or raise lr_tune.trials")
    sign = -1 if higher_is_better else 1
    return min(finished, key=lambda t: (sign * t.best, t.number)).lr


def write(search: Search, run_dir: str | Path) -> None:
    """lr_tune.json and lr_tune.png in the run dir (rank 0 only)."""
    if not distributed.is_main():
        return
    from trainer.run.figures import lr_tune_figure

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = asdict(search)
    for trial, stored in zip(search.trials, record["trials"]):
        stored["best"] = trial.best
    (run_dir / f"{FILE_NAME}.json").write_text(json.dumps(record, indent=2) + "\n")
    lr_tune_figure(record, epochs=search.budget_epochs // max(len(search.trials), 1)).savefig(
        run_dir / f"{FILE_NAME}.png", dpi=100)
