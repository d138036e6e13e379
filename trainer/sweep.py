"""What a sweep ends with: summary.md, summary.csv, summary_groups.csv, curves.png and reliability_overlay.png in the
sweep dir, built only from the job dirs on disk (each job's .hydra/, status.json and metrics.json), so the same code
summarises a finished, failed or interrupted sweep (scripts/summarize.py calls `summarize` directly).

Runs that differ only by `seed` form a group: every metric gets the mean over the seeds and its 95% confidence
interval, and each group's best validation accuracy is compared with the top group's by Welch's t-test. SciPy does
the statistics; it is imported only when a summary is built, not by every run that instantiates the callback.
"""
import csv
import io
import math
import statistics
import sys
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from trainer.config import config_dir, override_key
from trainer.errors import Exit, UserError
from trainer.metrics import (ACC, BEST, BEST_EPOCH, CALIBRATION, CHOSEN_LR, ECE, EPOCHS, HISTORY, LOSS, MAE,
                             MAX_GRAD_NORM, MONITORS, NLL, R2, RMSE, TEST, TRAIN, VAL, recorded_monitor, result_key,
                             tag)
from trainer.resume_sweep import SET_ASIDE, SHORTCUT
from trainer.rundir import DIVERGED, DONE, FAILED, NOT_STARTED, STATUSES, UNFINISHED, read_json

# A summary's own value, computed from a job's history: the first epoch whose validation accuracy reached the target.
EPOCHS_TO_TARGET, NEVER = "epochs_to_target", "never"
RMSE_BEST = MONITORS[1]
LEVEL = 0.95  # of the confidence intervals; Welch's test calls two groups tied at p >= 1 - LEVEL
CURVES, RELIABILITY = "curves.png", "reliability_overlay.png"
FILES = ("summary.md", "summary.csv", "summary_groups.csv", CURVES, RELIABILITY)


@dataclass(frozen=True)
class Column:
    key: str                # metrics.json key, or EPOCHS_TO_TARGET
    title: str
    fmt: str
    mean_fmt: str = None    # of a seed group's mean and interval; fmt when None
    grouped: bool = True    # in the seed-group table too
    optional: bool = False  # left out of summary.md when no job has it


COLUMNS = (
    Column(BEST.best_key, "best val acc", "{:.4f}", optional=True),
    Column(RMSE_BEST.best_key, "best val RMSE", "{:.4g}", optional=True),  # regression jobs (data.task)
    Column(BEST_EPOCH, "best epoch", "{:d}", grouped=False),
    Column(result_key(TEST, ACC), "test acc", "{:.4f}", optional=True),
    Column(result_key(TEST, RMSE), "test RMSE", "{:.4g}", optional=True),
    Column(result_key(TEST, MAE), "test MAE", "{:.4g}", optional=True),
    Column(result_key(TEST, R2), "test R²", "{:.4f}", optional=True),
    Column(result_key(TEST, NLL), "test NLL", "{:.4f}", optional=True),
    Column(result_key(TEST, ECE), "test ECE", "{:.4f}", optional=True),
    Column(result_key(TEST, LOSS), "test loss", "{:.4f}"),
    Column(result_key(TRAIN, LOSS), "train loss", "{:.4f}"),
    Column(CHOSEN_LR, "lr", "{:.3g}", optional=True),  # only jobs with optimizer.lr=auto record the rate they chose
    Column(MAX_GRAD_NORM, "max grad norm", "{:.3g}"),
    Column(EPOCHS_TO_TARGET, "epochs to target", "{:d}", mean_fmt="{:.1f}"),
    Column(EPOCHS, "epochs", "{:d}", grouped=False),
)


# --- reading a sweep dir ------------------------------------------------------------------------------------

@dataclass
class Job:
    name: str                        # the job dir, relative to the sweep dir
    num: int
    overrides: list
    status: str                      # one of trainer.rundir's statuses (DONE, FAILED, ..., NOT_STARTED)
    error: str = None
    wall_time_s: float = None
    metrics: dict = field(default_factory=dict)


def _job_num(job_dir):
    hydra_yaml = job_dir / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        num = (yaml.safe_load(hydra_yaml.read_text()) or {}).get("hydra", {}).get("job", {}).get("num")
        if isinstance(num, int):
            return num
    return 1 << 30  # unknown: after the numbered jobs


def read_job(job_dir, sweep_dir):
    status = read_json(job_dir / "status.json")
    return Job(name=str(job_dir.relative_to(sweep_dir)), num=_job_num(job_dir),
               overrides=[str(o) for o in yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []],
               status=status.get("status", UNFINISHED), error=status.get("error"),
               wall_time_s=status.get("wall_time_s"), metrics=read_json(job_dir / "metrics.json"))


def read_jobs(sweep_dir):
    """Every job of the sweep in launch order: the job dirs (folders with .hydra/overrides.yaml; the attempts a
    resumed sweep set aside are not jobs), then the jobs its command plans that never started."""
    sweep_dir = Path(sweep_dir)
    # the sweep dir itself is a job dir when a job has no overrides (hydra.sweep.subdir is then empty)
    dirs = {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")
            if SET_ASIDE not in p.relative_to(sweep_dir).parts}
    jobs = [read_job(d, sweep_dir) for d in dirs]
    started = {job.num for job in jobs}
    jobs += [Job(name=",".join(overrides), num=num, overrides=overrides, status=NOT_STARTED)
             for num, overrides in enumerate(planned_jobs(sweep_dir) or []) if num not in started]
    return sorted(jobs, key=lambda job: (job.num, job.name))


def planned_jobs(sweep_dir):
    """The overrides of every job the sweep in `sweep_dir` plans, in launch order, from Hydra's record of its command
    (multirun.yaml); None for a sweeper that chooses its jobs as it goes (Optuna) or without a record."""
    record = Path(sweep_dir) / "multirun.yaml"
    hydra_cfg = ((yaml.safe_load(record.read_text()) if record.is_file() else None) or {}).get("hydra") or {}
    sweeper = hydra_cfg.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # how Hydra itself expands the grid
    from hydra.core.override_parser.overrides_parser import OverridesParser

    command = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    command += [str(o) for o in (hydra_cfg.get("overrides") or {}).get("task") or []]
    parsed = OverridesParser.create().parse_overrides(command)
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


# --- labels: what differs between jobs ----------------------------------------------------------------------

def common_overrides(jobs):
    """Overrides every job has with the same value; the rest is what the sweep varies."""
    if len(jobs) < 2:
        return []
    shared = set(jobs[0].overrides)
    for job in jobs[1:]:
        shared &= set(job.overrides)
    return [o for o in jobs[0].overrides if o in shared]


def label(job, common, drop_keys=()):
    varying = [o for o in job.overrides if o not in common and override_key(o) not in drop_keys]
    return " ".join(varying) or "(defaults)"


def seeds_vary(jobs):
    seeds = {o for job in jobs for o in job.overrides if override_key(o) == "seed"}
    return len(seeds) > 1


# --- what the columns hold ----------------------------------------------------------------------------------

def finished(job):
    """A job whose metrics.json is final: only these enter a seed group's statistics."""
    return job.status == DONE


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_target(target):
    if not is_number(target) or not 0 < target <= 1:
        raise UserError(f"sweep.target={target} is invalid: it is the fraction of the sweep's best validation "
                        "accuracy a job must reach, a number in (0, 1], e.g. sweep.target=0.95")
    return target


def configured_target(sweep_dir, jobs):
    """sweep.target as the sweep ran with it (a job's .hydra/config.yaml), else conf/config.yaml's (a sweep from
    before the key existed)."""
    for job in jobs:
        composed = Path(sweep_dir) / job.name / ".hydra" / "config.yaml"
        config = (yaml.safe_load(composed.read_text()) if composed.is_file() else None) or {}
        if (config.get("sweep") or {}).get("target") is not None:
            return config["sweep"]["target"]
    return OmegaConf.load(config_dir() / "config.yaml").sweep.target


def target_accuracy(jobs, target):
    """`target` times the best validation accuracy any job reached in any epoch; None without a history."""
    accuracies = [row[tag(ACC, VAL)] for job in jobs for row in job.metrics.get(HISTORY) or []
                  if is_number(row.get(tag(ACC, VAL)))]
    return target * max(accuracies) if accuracies else None


def epochs_to_target(history, target_acc):
    """The first epoch whose validation accuracy reached `target_acc`, NEVER when none did."""
    return next((row["epoch"] for row in history if row.get(tag(ACC, VAL), -math.inf) >= target_acc), NEVER)


def job_values(job, target_acc):
    """A job's value for every column: its metrics.json, and the epochs to target from its history."""
    values = dict(job.metrics)
    if job.metrics.get(HISTORY) and target_acc is not None:
        values[EPOCHS_TO_TARGET] = epochs_to_target(job.metrics[HISTORY], target_acc)
    return values


# --- statistics over seeds ------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _t_quantile(n):
    from scipy import stats

    return float(stats.t.ppf((1 + LEVEL) / 2, n - 1))


@dataclass(frozen=True)
class Estimate:
    """A mean over n runs and the half-width of its confidence interval (Student's t with n - 1 degrees of
    freedom; None for a single run)."""
    mean: float
    n: int
    half_width: float = None

    @property
    def low(self):
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self):
        return None if self.half_width is None else self.mean + self.half_width


def estimate(values):
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(mean, len(values))
    if len(set(values)) == 1:  # exactly: rounding in the mean would give a spread of 1e-18
        return Estimate(values[0], len(values), 0.0)
    from scipy import stats

    return Estimate(mean, len(values), _t_quantile(len(values)) * float(stats.sem(values)))


def welch_p(best, other):
    """Two-sided p-value of Welch's t-test that two samples share their mean; None when one has fewer than two
    values. Two samples without spread (every seed reached the same accuracy, say 1.0 on an easy task) have no t
    statistic (0/0) and are compared as they are: p = 1 for equal values, 0 for different ones."""
    from scipy import stats

    if len(best) < 2 or len(other) < 2:
        return None
    if len(set(best)) == 1 and len(set(other)) == 1:
        return 1.0 if best[0] == other[0] else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's warning for nearly equal values: p is still right
        return float(stats.ttest_ind(best, other, equal_var=False).pvalue)


@dataclass
class Group:
    """Runs that differ only by seed: the samples of their finished runs and the estimates of every column."""
    name: str                                     # the overrides its runs share, seed left out
    jobs: list
    samples: dict = field(default_factory=dict)   # column key -> [value of each finished run that has it]
    estimates: dict = field(default_factory=dict)  # column key -> Estimate of samples[key]
    never: int = 0                                # finished runs that never reached the target accuracy
    top: bool = False                             # the group with the best mean validation accuracy
    p_value: float = None                         # Welch's test of best val acc against the top group

    @property
    def done(self):
        return [job for job in self.jobs if finished(job)]

    @property
    def verdict(self):
        """"best", "tied" (the test cannot tell it from the top group), "worse", or None (too few runs)."""
        if self.top:
            return "best"
        if self.p_value is None:
            return None
        return "tied" if self.p_value >= 1 - LEVEL else "worse"


def seed_groups(jobs, common):
    """{label without seed: [jobs]} for jobs that differ only by seed."""
    groups = {}
    for job in jobs:
        groups.setdefault(label(job, common, drop_keys=("seed",)), []).append(job)
    return groups


def make_group(name, jobs, values):
    group = Group(name, jobs)
    for column in COLUMNS:
        sample = [values[job.name].get(column.key) for job in group.done]
        group.samples[column.key] = [value for value in sample if is_number(value)]
        if group.samples[column.key]:
            group.estimates[column.key] = estimate(group.samples[column.key])
    group.never = sum(values[job.name].get(EPOCHS_TO_TARGET) == NEVER for job in group.done)
    return group


def ranked_groups(jobs, common, values):
    """The seed groups, best mean validation accuracy first (groups without one last, in launch order), each
    tested against the first."""
    groups = [make_group(name, members, values) for name, members in seed_groups(jobs, common).items()]
    best = sweep_monitor(jobs)
    key, sign = best.best_key, -1 if best.higher_is_better else 1
    groups.sort(key=lambda group: sign * group.estimates[key].mean if key in group.estimates else math.inf)
    if groups and key in groups[0].estimates:
        groups[0].top = True
        for group in groups[1:]:
            group.p_value = welch_p(groups[0].samples[key], group.samples[key])
    return groups


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


def read_summary(sweep_dir, *, target=None):
    """The summary of the sweep in `sweep_dir`; `target` (sweep.target) defaults to the one the sweep ran with."""
    sweep_dir = Path(sweep_dir)
    jobs = read_jobs(sweep_dir)
    target = check_target(configured_target(sweep_dir, jobs) if target is None else target)
    target_acc = target_accuracy(jobs, target)
    values = {job.name: job_values(job, target_acc) for job in jobs}
    common = common_overrides(jobs)
    return Summary(sweep_dir, jobs, target, target_acc, common, values, ranked_groups(jobs, common, values))


# --- tables ---------------------------------------------------------------------------------------------------

def sweep_monitor(jobs):
    """What ranks the sweep: the best validation accuracy, or for regression jobs their own "best" (the lowest
    validation RMSE by default), whichever the jobs' metrics.json hold."""
    return recorded_monitor({key for job in jobs for key in job.metrics})


def ranking_text(best):
    return f"{'highest' if best.higher_is_better else 'lowest'} best validation {best.metric}".replace(
        "highest best validation acc", "best validation accuracy")


def ranked(jobs):
    """Best first by sweep_monitor (highest validation accuracy, lowest validation RMSE); jobs without one (failed,
    unfinished) last, in launch order."""
    best = sweep_monitor(jobs)
    sign = -1 if best.higher_is_better else 1
    value = lambda job: job.metrics.get(best.best_key)
    return sorted(jobs, key=lambda job: (sign * value(job) if is_number(value(job)) else math.inf, job.num))


def status_text(job):
    return f"{job.status}: {job.error}" if job.status in (FAILED, DIVERGED) and job.error else job.status


def _cell(value, fmt):
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown_table(header, rows):
    escape = lambda text: str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def shown_columns(summary, *, grouped=False):
    """The columns of summary.md: every one, except an optional one no job has."""
    return [column for column in COLUMNS if (column.grouped or not grouped)
            and (not column.optional or any(column.key in values for values in summary.values.values()))]


def jobs_table(summary):
    columns = shown_columns(summary)
    header = ["rank", "overrides", "status", *(column.title for column in columns), "wall time (s)"]
    rows = [[rank, label(job, summary.common), status_text(job),
             *(_cell(summary.values[job.name].get(column.key), column.fmt) for column in columns),
             _cell(job.wall_time_s, "{:.1f}")]
            for rank, job in enumerate(ranked(summary.jobs), start=1)]
    return markdown_table(header, rows)


def estimate_text(group, column):
    """"mean ± half-width" (the mean alone for one run), and for epochs to target the runs that never got there."""
    found, fmt = group.estimates.get(column.key), column.mean_fmt or column.fmt
    text = "–" if found is None else fmt.format(found.mean)
    if found is not None and found.half_width is not None:
        text += f" ± {fmt.format(found.half_width)}"
    if column.key == EPOCHS_TO_TARGET and group.never:
        text = NEVER if found is None else f"{text}, {NEVER} in {group.never}"
    return text


def verdict_text(group):
    if group.verdict in (None, "best"):
        return group.verdict or "–"
    return f"{group.verdict} (p={group.p_value:.2g})"


def seeds_of(jobs):
    return [o.split("=", 1)[1] for job in jobs for o in job.overrides if override_key(o) == "seed"]


def group_table(summary):
    """One row per seed group: mean ± 95% interval of every column over its finished runs, and Welch's verdict."""
    columns = shown_columns(summary, grouped=True)
    header = ["rank", "overrides (all seeds)", "runs done", "seeds", "vs best", *(column.title for column in columns)]
    rows = [[rank, group.name, f"{len(group.done)}/{len(group.jobs)}", " ".join(seeds_of(group.jobs)),
             verdict_text(group), *(estimate_text(group, column) for column in columns)]
            for rank, group in enumerate(summary.groups, start=1)]
    return markdown_table(header, rows)


GROUPS_EXPLAINED = (
    "± is the 95% confidence interval of the mean over the seeds (Student's t, n−1 degrees of freedom); "
    "\"tied\" means Welch's t-test cannot tell the group's best validation value (accuracy, or a regression's "
    "RMSE) from the best group's at the 5% level "
    "(p ≥ 0.05), \"worse\" that it can (p < 0.05).")


def target_line(summary):
    if summary.target_acc is None:
        return []
    best = summary.target_acc / summary.target
    return [f"Epochs to target: the first epoch whose validation accuracy reached {summary.target_acc:.4f} "
            f"(`sweep.target={summary.target:g}` × {best:.4f}, the best in the sweep), or \"{NEVER}\".", ""]


def summary_markdown(summary, pictures=()):
    jobs, common = summary.jobs, summary.common
    counts = {s: sum(job.status == s for job in jobs) for s in STATUSES}
    lines = [f"# Sweep summary: {summary.sweep_dir}", "",
             f"{len(jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ". "
             f"Ranked by {ranking_text(sweep_monitor(jobs))}.",
             ""]
    if common:
        lines += ["Same in every job: `" + " ".join(common) + "`", ""]
    lines += target_line(summary)
    if seeds_vary(jobs):
        lines += ["## Seed groups (mean ± 95% confidence interval)", "", GROUPS_EXPLAINED, "",
                  group_table(summary), "", "## Every job", ""]
    lines += [jobs_table(summary), ""]
    alt = {CURVES: "training and validation curves", RELIABILITY: "reliability diagram of the test split"}
    lines += [f"![{alt[name]}]({name})\n" for name in pictures]
    return "\n".join(lines)


def _csv(header, rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def summary_csv(summary):
    """One row per job with full overrides and raw numbers, for a spreadsheet or pandas."""
    header = ["rank", "job_dir", "overrides", "group", "status", "error", *(c.key for c in COLUMNS), "wall_time_s"]
    rows = [[rank, job.name, " ".join(job.overrides), label(job, summary.common, drop_keys=("seed",)), job.status,
             job.error or "", *(summary.values[job.name].get(c.key, "") for c in COLUMNS),
             "" if job.wall_time_s is None else job.wall_time_s]
            for rank, job in enumerate(ranked(summary.jobs), start=1)]
    return _csv(header, rows)


def groups_csv(summary):
    """One row per seed group: the numbers behind the seed table. For every column KEY: "KEY mean", the interval
    "KEY low" and "KEY high" (empty for one run) and "KEY n" (finished runs that have it); "p_vs_best" is Welch's
    p-value of best/val_acc against the top group."""
    keys = [column.key for column in COLUMNS if column.grouped]
    header = ["rank", "group", "runs", "runs_done", "seeds", "vs_best", "p_vs_best",
              *(f"{key} {part}" for key in keys for part in ("mean", "low", "high", "n")), "epochs_to_target never"]
    blank = lambda value: "" if value is None else value
    rows = []
    for rank, group in enumerate(summary.groups, start=1):
        found = [group.estimates.get(key) for key in keys]
        rows.append([rank, group.name, len(group.jobs), len(group.done), " ".join(seeds_of(group.jobs)),
                     blank(group.verdict), blank(group.p_value),
                     *(blank(getattr(e, part, None)) for e in found for part in ("mean", "low", "high", "n")),
                     group.never])
    return _csv(header, rows)


# --- pictures -------------------------------------------------------------------------------------------------

def group_curves(histories):
    """{history key: (epochs, means, lows, highs)} over a group's histories: per epoch, the mean of the runs
    that reached it and its 95% interval (nan bounds where one run did)."""
    per_key = {}
    for history in histories:
        for row in history:
            for key, value in row.items():
                if key != "epoch" and is_number(value):
                    per_key.setdefault(key, {}).setdefault(row["epoch"], []).append(value)
    curves = {}
    for key, per_epoch in per_key.items():
        epochs = sorted(per_epoch)
        found = [estimate(per_epoch[epoch]) for epoch in epochs]
        curves[key] = (epochs, [e.mean for e in found], [math.nan if e.low is None else e.low for e in found],
                       [math.nan if e.high is None else e.high for e in found])
    return curves


def plot_curves(summary, path):
    """curves.png: each seed group's curves (mean line, 95% band over its seeds). False when no job has a history."""
    from trainer.figures import CURVE_PANELS, REGRESSION_PANELS, curves_figure

    histories = [(group, [job.metrics[HISTORY] for job in group.jobs if job.metrics.get(HISTORY)])
                 for group in summary.groups]
    series = [(group.name, group_curves(runs)) for group, runs in histories if runs]
    if not series:
        return False
    best = sweep_monitor(summary.jobs)
    title = f"ranked by {ranking_text(best)}"
    if any(len(runs) > 1 for _, runs in histories):
        title += "\nline: mean over seeds\nband: 95% CI of the mean (Student's t)"
    panels = CURVE_PANELS if best is BEST else REGRESSION_PANELS
    curves_figure(series, legend_title=title, panels=panels).savefig(path, dpi=80)
    return True


def merge_calibration(calibrations):
    """One reliability curve from several runs' test calibration bins (a seed group's): counts summed, the mean
    confidence and accuracy of a bin weighted by its count in each run; None for a bin no run filled. Runs binned
    differently from the first are left out (their bins cover other ranges)."""
    bins = calibrations[0]["bins"]
    runs = [c for c in calibrations if c["bins"] == bins]
    count = [sum(run["count"][i] for run in runs) for i in range(bins)]

    def weighted(part, i):
        total = sum(run[part][i] * run["count"][i] for run in runs if run["count"][i])
        return total / count[i] if count[i] else None

    return {"bins": bins, "count": count, "confidence": [weighted("confidence", i) for i in range(bins)],
            "accuracy": [weighted("accuracy", i) for i in range(bins)]}


def plot_reliability(summary, path):
    """reliability_overlay.png: every seed group's test reliability curve. False when no job recorded one."""
    from trainer.figures import reliability_overlay_figure

    curves = [(group.name, [job.metrics[CALIBRATION] for job in group.done if job.metrics.get(CALIBRATION)])
              for group in summary.groups]
    curves = [(name, merge_calibration(runs)) for name, runs in curves if runs]
    if not curves:
        return False
    seeds = any(len(group.done) > 1 for group in summary.groups)
    reliability_overlay_figure(curves, legend_title="seeds merged: bin counts summed" if seeds else None
                               ).savefig(path, dpi=80)
    return True


# --- putting it together ------------------------------------------------------------------------------------

def summarize(sweep_dir, *, target=None):
    """Write summary.md, summary.csv, summary_groups.csv, curves.png and reliability_overlay.png into the sweep
    dir; returns (markdown text, jobs). `target`: sweep.target, by default the one the sweep ran with."""
    summary = read_summary(sweep_dir, target=target)
    pictures = []
    for name, plot in ((CURVES, plot_curves), (RELIABILITY, plot_reliability)):
        if plot(summary, summary.sweep_dir / name):
            pictures.append(name)
        else:  # a stale picture would show jobs the table does not
            (summary.sweep_dir / name).unlink(missing_ok=True)
    text = summary_markdown(summary, pictures)
    (summary.sweep_dir / "summary.md").write_text(text)
    (summary.sweep_dir / "summary.csv").write_text(summary_csv(summary))
    (summary.sweep_dir / "summary_groups.csv").write_text(groups_csv(summary))
    return text, summary.jobs


def summarize_and_show(sweep_dir, *, target=None):
    """summarize(), then print the summary and the files written; returns the jobs."""
    text, jobs = summarize(sweep_dir, target=target)
    written = [name for name in FILES if (Path(sweep_dir) / name).is_file()]
    print(f"\n{text}\nwritten in {sweep_dir}: {', '.join(written)}", flush=True)
    return jobs


def stop_sweep(sweep_dir, *, why, target=None):
    """A sweep stopped before its end (a signal, sweep.fail_fast): the summary of the jobs so far, the others listed
    as not started, and how to finish it."""
    summarize_and_show(sweep_dir, target=target)
    print(f"{why}: finish the sweep with `train {SHORTCUT}={sweep_dir}`", file=sys.stderr, flush=True)


class SummaryCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks: at the end of every multirun, summarise the sweep and
    exit non-zero if a job failed or diverged (the jobs catch their own errors so the rest of the sweep runs; Hydra's
    main wrapper drops the sweep's return value, so this is the last code that sees the whole sweep)."""

    def on_multirun_start(self, config, **kwargs):
        try:  # before any job runs: a mistake here would otherwise surface only after the whole sweep
            check_target(OmegaConf.select(config, "sweep.target"))
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if (sweep_dir / "multirun.yaml").is_file():  # Hydra writes it after this: the folder holds an earlier run
            print(f"finishing the sweep in {sweep_dir}: done jobs are kept, stopped ones resume from their last.pt, "
                  "failed ones run again", flush=True)

    def on_multirun_end(self, config, **kwargs):
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = summarize_and_show(sweep_dir, target=OmegaConf.select(config, "sweep.target"))
        bad = {status: sum(job.status == status for job in jobs) for status in (FAILED, DIVERGED)}
        if any(bad.values()):
            parts = [f"{n} {status}" for status, n in bad.items() if n]
            what = (f"{sum(bad.values())} of {len(jobs)} jobs did not finish ({', '.join(parts)})" if len(parts) > 1
                    else f"{sum(bad.values())} of {len(jobs)} jobs {next(s for s, n in bad.items() if n)}")
            raise Exit(f"error: {what}: see {sweep_dir / 'summary.md'}")  # status 1
