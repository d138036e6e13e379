"""The figures of a sweep's pictures: the curves of every seed group and the overlay of their reliability diagrams.
Bare matplotlib Figures (trainer/drawing.py): no pyplot backend, so they draw headless."""
from __future__ import annotations

from typing import TYPE_CHECKING

from trainer.drawing import new_figure
from trainer.metrics import ACC, BALANCED_ACC, LOSS, MACRO_F1, NLL, R2, RMSE, TRAIN, VAL, tag

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from trainer.sweep.pictures import Curve


# curves.png's panels, (history key, title): a job's own loss on top (each loss has its own scale, so these compare
# epochs of one job, not jobs), below what compares across losses: the NLL of the predicted probabilities, accuracy
CURVE_PANELS = ((tag(LOSS, TRAIN), "training loss (each job's own loss)"),
                (tag(LOSS, VAL), "validation loss (each job's own loss)"),
                (tag(NLL, VAL), "validation NLL (compares across losses)"),
                (tag(ACC, VAL), "validation accuracy"))
ACCURACIES = {ACC: "validation accuracy", BALANCED_ACC: "validation balanced accuracy",
              MACRO_F1: "validation macro-F1"}


def classification_panels(metric: str) -> tuple:
    """CURVE_PANELS with the last panel showing what ranks the sweep (data.best: accuracy, balanced accuracy or
    macro-F1)."""
    return (*CURVE_PANELS[:3], (tag(metric, VAL), ACCURACIES.get(metric, f"validation {metric}")))


# a regression sweep's: the losses, then what compares across them in the targets' units
REGRESSION_PANELS = ((tag(LOSS, TRAIN), "training loss (each job's own loss)"),
                     (tag(LOSS, VAL), "validation loss (each job's own loss)"),
                     (tag(RMSE, VAL), "validation RMSE (compares across losses)"),
                     (tag(R2, VAL), "validation R²"))


def curves_figure(series: Sequence[tuple[str, Mapping[str, Curve]]], *, legend_title: str,
                  panels: Sequence[tuple[str, str]] = CURVE_PANELS) -> Figure:
    """The panels per epoch: `series` is [(name, {history key: trainer.sweep.pictures.Curve})], best first; one
    colour per name: each run's line thin, the mean bold, and a shaded band between the interval's bounds (none
    where they are nan). A panel whose curves are on a log scale (errors and losses) gets a log axis."""
    figure = new_figure(figsize=(13, 8), layout="constrained")
    axes = figure.subplots(2, 2).flat
    for ax, (key, title) in zip(axes, panels):
        curves = [(index, by_key[key]) for index, (_, by_key) in enumerate(series) if key in by_key]
        for index, curve in curves:
            look = _look(index)
            for epochs, values in curve.runs if len(curve.runs) > 1 else ():
                ax.plot(epochs, values, linewidth=0.7, alpha=0.35, color=look["color"], linestyle=look["linestyle"])
            ax.plot(curve.epochs, curve.means, marker="o", markersize=3, linewidth=2, label=series[index][0], **look)
            ax.fill_between(curve.epochs, curve.lows, curve.highs, color=look["color"], alpha=0.15, linewidth=0)
        _curve_axes(ax, title, key, [curve for _, curve in curves])
    unique = {}  # one legend entry per group, in rank order, whichever panels it has
    for ax in figure.axes:
        handles, labels = ax.get_legend_handles_labels()
        unique.update(zip(labels, handles))
    names = [name for name, _ in series if name in unique]
    figure.legend([unique[name] for name in names], names, loc="outside right upper", fontsize="small",
                  title=legend_title)
    return figure


def _look(index):
    """The colour and line style of the index-th series: ten colours, then the same ten dashed, and so on."""
    return {"color": f"C{index % 10}", "linestyle": ("-", "--", ":", "-.")[(index // 10) % 4]}


def _curve_axes(ax, title, key, curves):
    from matplotlib.ticker import MaxNLocator

    ax.set(title=title, xlabel="epoch", ylabel=key)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not curves:  # runs from before the metric existed
        ax.text(0.5, 0.5, f"no {key} in these runs' history", ha="center", va="center", transform=ax.transAxes)
        return
    if all(curve.log for curve in curves):
        log_axis(ax)  # losses of different jobs live on different scales


def reliability_overlay_figure(curves: Sequence[tuple[str, dict, Sequence[dict]]], *,
                               legend_title: str | None = None) -> Figure:
    """A reliability diagram overlaying several test calibrations: `curves` is [(name, merged, runs)], each
    calibration a {"bins", "confidence", "accuracy", "count"} with null entries for empty bins: a group's seeds
    merged (bold) and each seed's own (thin, when there are several). Above, accuracy against mean confidence per
    bin (the diagonal is perfect calibration); below, the samples in each bin of the merged seeds."""
    figure = new_figure(figsize=(8, 8), layout="constrained")
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    filled = lambda calibration: [(c, a) for c, a in zip(calibration["confidence"], calibration["accuracy"])
                                  if c is not None]
    for index, (name, calibration, runs) in enumerate(curves):
        look = _look(index)
        for run in runs if len(runs) > 1 else ():
            top.plot(*zip(*filled(run)), linewidth=0.7, alpha=0.35, color=look["color"], linestyle=look["linestyle"])
        top.plot(*zip(*filled(calibration)), marker="o", markersize=4, linewidth=2, label=name, **look)
        bins = calibration["bins"]
        bottom.stairs(calibration["count"], [i / bins for i in range(bins + 1)], **look)
    top.set(title="reliability diagram, test split", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    bottom.set(xlabel="confidence (top-label probability)", ylabel="samples per bin")
    bottom.set_yscale("log", nonpositive="clip")  # most samples sit in the top bin
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize="small", title=legend_title)
    return figure


def log_axis(ax: Axes) -> None:
    """A logarithmic y axis with readable ticks: 0.1 0.2 0.5 1 2 5."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
