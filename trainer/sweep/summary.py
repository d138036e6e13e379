"""What a sweep's summary computes from its jobs: each job's values for every column, the seed groups with their
estimates, ranked, each compared with the best (paired by seed, Holm-corrected: trainer/sweep/stats.py), and the
target of "epochs to target"."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from omegaconf import OmegaConf

from trainer.config import config_dir
from trainer.errors import UserError
from trainer.metrics import ACC, HISTORY, VAL, recorded_monitor, tag
from trainer.sweep.columns import COLUMNS, EPOCHS_TO_TARGET, NEVER
from trainer.sweep.jobs import Job, common_overrides, finished, is_number, label, read_jobs, seed_of
from trainer.sweep.stats import LEVEL, Comparison, compare, estimate, holm

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from trainer.metrics import Monitor


def check_target(target: object) -> float:
    if not is_number(target) or not 0 < target <= 1:
        raise UserError(f"sweep.target={target} is invalid: it is the fraction of the sweep's best validation "
                        "accuracy a job must reach, a number in (0, 1], e.g. sweep.target=0.95")
    return target


def configured_target(sweep_dir: str | Path, jobs: Iterable[Job]) -> float:
    """sweep.target as the sweep ran with it (a job's .hydra/config.yaml), else conf/config.yaml's (a sweep from
    before the key existed)."""
    for job in jobs:
        composed = Path(sweep_dir) / job.name / ".hydra" / "config.yaml"
        config = (yaml.safe_load(composed.read_text()) if composed.is_file() else None) or {}
        if (config.get("sweep") or {}).get("target") is not None:
            return config["sweep"]["target"]
    return OmegaConf.load(config_dir() / "config.yaml").sweep.target


def target_accuracy(jobs: Iterable[Job], target: float) -> float | None:
    """`target` times the best validation accuracy any job reached in any epoch; None without a history."""
    accuracies = [row[tag(ACC, VAL)] for job in jobs for row in job.metrics.get(HISTORY) or []
                  if is_number(row.get(tag(ACC, VAL)))]
    return target * max(accuracies) if accuracies else None


def epochs_to_target(history: Iterable[Mapping[str, object]], target_acc: float) -> int | str:
    """The first epoch whose validation accuracy reached `target_acc`, NEVER when none did."""
    return next((row["epoch"] for row in history if row.get(tag(ACC, VAL), -math.inf) >= target_acc), NEVER)


def job_values(job: Job, target_acc: float | None) -> dict[str, object]:
    """A job's value for every column: its metrics.json, and the epochs to target from its history."""
    values = dict(job.metrics)
    if job.metrics.get(HISTORY) and target_acc is not None:
        values[EPOCHS_TO_TARGET] = epochs_to_target(job.metrics[HISTORY], target_acc)
    return values


@dataclass
class Group:
    """Runs that differ only by seed: the samples of their finished runs and the estimates of every column."""
    name: str                                     # the overrides its runs share, seed left out
    jobs: list
    samples: dict = field(default_factory=dict)   # column key -> [value of each finished run that has it]
    estimates: dict = field(default_factory=dict)  # column key -> Estimate of samples[key]
    never: int = 0                                # finished runs that never reached the target accuracy
    top: bool = False                             # the group with the best mean validation accuracy
    comparison: Comparison = None                 # against the top group, on what ranks the sweep

    @property
    def done(self) -> list[Job]:
        return [job for job in self.jobs if finished(job)]

    @property
    def verdict(self) -> str | None:
        """"best", "tied" (the test, Holm-corrected, cannot tell it from the top group), "worse", or None (too few
        runs to test)."""
        if self.top:
            return "best"
        if self.comparison is None or self.comparison.p_holm is None:
            return None
        return "tied" if self.comparison.p_holm >= 1 - LEVEL else "worse"


def seed_groups(jobs: Iterable[Job], common: Collection[str]) -> dict[str, list[Job]]:
    """{label without seed: [jobs]} for jobs that differ only by seed."""
    groups = {}
    for job in jobs:
        groups.setdefault(label(job, common, drop_keys=("seed",)), []).append(job)
    return groups


def make_group(name: str, jobs: list[Job], values: Mapping[str, Mapping[str, object]]) -> Group:
    group = Group(name, jobs)
    for column in COLUMNS:
        sample = [values[job.name].get(column.key) for job in group.done]
        group.samples[column.key] = [value for value in sample if is_number(value)]
        if group.samples[column.key]:
            group.estimates[column.key] = estimate(group.samples[column.key])
    group.never = sum(values[job.name].get(EPOCHS_TO_TARGET) == NEVER for job in group.done)
    return group


def ranked_groups(jobs: Sequence[Job], common: Collection[str],
                  values: Mapping[str, Mapping[str, object]]) -> list[Group]:
    """The seed groups, best mean validation accuracy first (groups without one last, in launch order), each
    compared with the first; the p-values corrected together by Holm's method."""
    groups = [make_group(name, members, values) for name, members in seed_groups(jobs, common).items()]
    best = sweep_monitor(jobs)
    key, sign = best.best_key, -1 if best.higher_is_better else 1
    groups.sort(key=lambda group: sign * group.estimates[key].mean if key in group.estimates else math.inf)
    if groups and key in groups[0].estimates:
        groups[0].top = True
        top = seed_values(groups[0], key, values)
        found = [compare(top, seed_values(group, key, values), higher_is_better=best.higher_is_better,
                         ratio=best.compared_by_ratio) for group in groups[1:]]
        for group, comparison, p_holm in zip(groups[1:], found, holm([c.p_value for c in found])):
            group.comparison = replace(comparison, p_holm=p_holm)
    return groups


def seed_values(group: Group, key: str, values: Mapping[str, Mapping[str, object]]) -> dict[str | None, float]:
    """{seed: value of `key`} over the group's finished runs that have it."""
    found = {seed_of(job): values[job.name].get(key) for job in group.done}
    return {seed: value for seed, value in found.items() if is_number(value)}


# --- the summary ----------------------------------------------------------------------------------------------

@dataclass
class Summary:
    """What summary.md, the csv files and the pictures show, computed once from the job dirs."""
    sweep_dir: Path
    jobs: list                # in launch order
    target: float             # sweep.target: the fraction of the sweep's best validation accuracy
    target_acc: float         # the accuracy that makes an epoch count for "epochs to target" (None: no history)
    common: list              # overrides every job shares
    values: dict              # job name -> {column key: value}
    groups: list              # seed groups, ranked


def read_summary(sweep_dir: str | Path, *, target: float | None = None) -> Summary:
    """The summary of the sweep in `sweep_dir`; `target` (sweep.target) defaults to the one the sweep ran with."""
    sweep_dir = Path(sweep_dir)
    jobs = read_jobs(sweep_dir)
    target = check_target(configured_target(sweep_dir, jobs) if target is None else target)
    target_acc = target_accuracy(jobs, target)
    values = {job.name: job_values(job, target_acc) for job in jobs}
    common = common_overrides(jobs)
    return Summary(sweep_dir, jobs, target, target_acc, common, values, ranked_groups(jobs, common, values))


def sweep_monitor(jobs: Iterable[Job]) -> Monitor:
    """What ranks the sweep: the best validation accuracy, or for regression jobs their own "best" (the lowest
    validation RMSE by default), whichever the jobs' metrics.json hold."""
    return recorded_monitor({key for job in jobs for key in job.metrics})


def ranking_text(best: Monitor) -> str:
    return f"{'highest' if best.higher_is_better else 'lowest'} best validation {best.metric}".replace(
        "highest best validation acc", "best validation accuracy")


def ranked(jobs: Iterable[Job]) -> list[Job]:
    """Best first by sweep_monitor (highest validation accuracy, lowest validation RMSE); jobs without one (failed,
    unfinished) last, in launch order."""
    best = sweep_monitor(jobs)
    sign = -1 if best.higher_is_better else 1
    value = lambda job: job.metrics.get(best.best_key)
    return sorted(jobs, key=lambda job: (sign * value(job) if is_number(value(job)) else math.inf, job.num))
