"""A sweep's pictures: curves.png (each seed group's curves per epoch, a band over its seeds) and
reliability_overlay.png (every group's test reliability diagram on one plot). The figures themselves are drawn in
trainer/sweep/figures.py."""
import math

from trainer.metrics import BEST, CALIBRATION, HISTORY
from trainer.sweep.jobs import is_number
from trainer.sweep.stats import estimate
from trainer.sweep.summary import ranking_text, sweep_monitor


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
    from trainer.sweep.figures import CURVE_PANELS, REGRESSION_PANELS, curves_figure

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
    from trainer.sweep.figures import reliability_overlay_figure

    curves = [(group.name, [job.metrics[CALIBRATION] for job in group.done if job.metrics.get(CALIBRATION)])
              for group in summary.groups]
    curves = [(name, merge_calibration(runs)) for name, runs in curves if runs]
    if not curves:
        return False
    seeds = any(len(group.done) > 1 for group in summary.groups)
    reliability_overlay_figure(curves, legend_title="seeds merged: bin counts summed" if seeds else None
                               ).savefig(path, dpi=80)
    return True
