"""A sweep's pictures: curves.png (each seed group's curves per epoch: every seed thin, the mean bold, a band that
stays in the metric's range) and reliability_overlay.png (every group's test reliability diagram on one plot, its
seeds thin). The figures themselves are drawn in trainer/sweep/figures.py."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trainer.metrics import CALIBRATION, HISTORY, MAE, R2, RATIO_METRICS, RMSE
from trainer.sweep.jobs import is_number
from trainer.sweep.stats import MIN_BOOTSTRAP, estimate
from trainer.sweep.summary import Summary, ranking_text, sweep_monitor

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence
    from pathlib import Path


@dataclass
class Curve:
    """A seed group's curve of one history key: per epoch the mean over the runs that reached it and its interval
    (trainer/sweep/stats.py: the range of the seeds' values below five, else a bootstrap interval; nan where one run
    did), and each run's own line, [(epochs, values)]. `log`: the geometric mean and an interval of the logarithms,
    for a log axis."""
    epochs: list
    means: list
    lows: list
    highs: list
    runs: list
    log: bool = False


def group_curves(histories: Sequence[list[dict]], keys: Collection[str] | None = None,
                 log_keys: Collection[str] = ()) -> dict[str, Curve]:
    """{history key: Curve} over a group's histories, for `keys` (every key when None); the keys in `log_keys` on a
    log scale."""
    per_key, runs = {}, {}
    for history in histories:
        for key in {key for row in history for key in row if key != "epoch"}:
            if keys is not None and key not in keys:
                continue
            line = [(row["epoch"], row[key]) for row in history if is_number(row.get(key))]
            for epoch, value in line:
                per_key.setdefault(key, {}).setdefault(epoch, []).append(value)
            runs.setdefault(key, []).append(tuple(map(list, zip(*line))) if line else ([], []))
    curves = {}
    for key, per_epoch in per_key.items():
        epochs = sorted(per_epoch)
        found = [estimate(per_epoch[epoch], log=key in log_keys) for epoch in epochs]
        curves[key] = Curve(epochs, [e.mean for e in found], [math.nan if e.low is None else e.low for e in found],
                            [math.nan if e.high is None else e.high for e in found], runs[key], key in log_keys)
    return curves


def log_scale_keys(histories: Sequence[list[dict]], keys: Iterable[str]) -> set[str]:
    """The keys drawn on a log axis: errors and losses (RATIO_METRICS) whose every value is > 0."""
    values = lambda key: [row[key] for history in histories for row in history if is_number(row.get(key))]
    return {key for key in keys if key.split("/", 1)[0] in RATIO_METRICS and values(key)
            and all(value > 0 for value in values(key))}


def plot_curves(summary: Summary, path: str | Path) -> bool:
    """curves.png: each seed group's curves (each seed thin, the mean bold, the interval as a band). False when no
    job has a history."""
    from trainer.sweep.figures import REGRESSION_PANELS, classification_panels, curves_figure

    best = sweep_monitor(summary.jobs)
    panels = REGRESSION_PANELS if best.metric in (RMSE, MAE, R2) else classification_panels(best.metric)
    keys = {key for key, _ in panels}
    histories = [(group, [job.metrics[HISTORY] for job in group.jobs if job.metrics.get(HISTORY)])
                 for group in summary.groups]
    log_keys = log_scale_keys([history for _, runs in histories for history in runs], keys)
    series = [(group.name, group_curves(runs, keys, log_keys)) for group, runs in histories if runs]
    if not series:
        return False
    title = f"ranked by {ranking_text(best)}"
    most = max(len(runs) for _, runs in histories)
    if most > 1:
        title += (f"\nthin: each seed; bold: the mean over seeds\nband: {band_text(most)}"
                  + ("\nlog axes: geometric mean, band of the logs" if log_keys else ""))
    curves_figure(series, legend_title=title, panels=panels).savefig(path, dpi=80)
    return True


def band_text(seeds: int) -> str:
    return (f"the seeds' range (under {MIN_BOOTSTRAP} seeds)" if seeds < MIN_BOOTSTRAP else
            f"95% BCa bootstrap interval of the mean ({MIN_BOOTSTRAP}+ seeds)")


def merge_calibration(calibrations: Sequence[dict]) -> dict:
    """One reliability curve from several runs' test calibration bins (a seed group's): counts summed, the mean
    confidence and accuracy of a bin weighted by its count in each run; None for a bin no run filled. Runs binned
    differently from the first are left out (their bins cover other ranges)."""
    bins = calibrations[0]["bins"]
    runs = [c for c in calibrations if c["bins"] == bins]
    count = [sum(run["count"][i] for run in runs) for i in range(bins)]

    def weighted(part: str, i: int) -> float | None:
        total = sum(run[part][i] * run["count"][i] for run in runs if run["count"][i])
        return total / count[i] if count[i] else None

    return {"bins": bins, "count": count, "confidence": [weighted("confidence", i) for i in range(bins)],
            "accuracy": [weighted("accuracy", i) for i in range(bins)]}


def plot_reliability(summary: Summary, path: str | Path) -> bool:
    """reliability_overlay.png: every seed group's test reliability curve. False when no job recorded one."""
    from trainer.sweep.figures import reliability_overlay_figure

    curves = [(group.name, [job.metrics[CALIBRATION] for job in group.done if job.metrics.get(CALIBRATION)])
              for group in summary.groups]
    curves = [(name, merge_calibration(runs), runs) for name, runs in curves if runs]
    if not curves:
        return False
    seeds = any(len(group.done) > 1 for group in summary.groups)
    title = "bold: seeds merged (bin counts summed)\nthin: each seed" if seeds else None
    reliability_overlay_figure(curves, legend_title=title).savefig(path, dpi=80)
    return True
