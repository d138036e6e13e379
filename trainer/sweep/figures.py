"""The figures of a sweep's pictures: the curves of every seed group and the overlay of their reliability diagrams.
Bare matplotlib Figures (trainer/drawing.py): no pyplot backend, so they draw headless."""
import math

from trainer.drawing import new_figure
from trainer.metrics import ACC, LOSS, NLL, R2, RMSE, TRAIN, VAL, tag


# curves.png's panels, (history key, title): a job's own loss on top (each loss has its own scale, so these compare
# epochs of one job, not jobs), below what compares across losses: the NLL of the predicted probabilities, accuracy
CURVE_PANELS = ((tag(LOSS, TRAIN), "training loss (each job's own loss)"),
                (tag(LOSS, VAL), "validation loss (each job's own loss)"),
                (tag(NLL, VAL), "validation NLL (compares across losses)"),
                (tag(ACC, VAL), "validation accuracy"))
# a regression sweep's: the losses, then what compares across them in the targets' units
REGRESSION_PANELS = ((tag(LOSS, TRAIN), "training loss (each job's own loss)"),
                     (tag(LOSS, VAL), "validation loss (each job's own loss)"),
                     (tag(RMSE, VAL), "validation RMSE (compares across losses)"),
                     (tag(R2, VAL), "validation R²"))


def curves_figure(series, *, legend_title, panels=CURVE_PANELS):
    """The panels of CURVE_PANELS per epoch: `series` is [(name, {history key: (epochs, means, lows, highs)})], best
    first; one colour per name, a line for the mean and a shaded band between lows and highs (nan: no band)."""
    figure = new_figure(figsize=(13, 8), layout="constrained")
    axes = figure.subplots(2, 2).flat
    for ax, (key, title) in zip(axes, panels):
        curves = [(index, by_key[key]) for index, (_, by_key) in enumerate(series) if key in by_key]
        for index, (epochs, means, lows, highs) in curves:
            look = _look(index)
            ax.plot(epochs, means, marker="o", markersize=3, label=series[index][0], **look)
            ax.fill_between(epochs, lows, highs, color=look["color"], alpha=0.2, linewidth=0)
        _curve_axes(ax, title, key, curves)
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
    values = [value for _, curve in curves for value in curve[1]]
    if key != tag(ACC, VAL) and all(value > 0 and math.isfinite(value) for value in values):
        log_axis(ax)  # losses of different jobs live on different scales


def reliability_overlay_figure(curves, *, legend_title=None):
    """A reliability diagram overlaying several test calibrations: `curves` is [(name, {"bins", "confidence",
    "accuracy", "count"})], null entries for empty bins. Above, accuracy against mean confidence per bin (the
    diagonal is perfect calibration); below, the samples in each bin."""
    figure = new_figure(figsize=(8, 8), layout="constrained")
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for index, (name, calibration) in enumerate(curves):
        filled = [(c, a) for c, a in zip(calibration["confidence"], calibration["accuracy"]) if c is not None]
        look = _look(index)
        top.plot([c for c, _ in filled], [a for _, a in filled], marker="o", markersize=4, label=name, **look)
        bins = calibration["bins"]
        bottom.stairs(calibration["count"], [i / bins for i in range(bins + 1)], **look)
    top.set(title="reliability diagram, test split", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    bottom.set(xlabel="confidence (top-label probability)", ylabel="samples per bin")
    bottom.set_yscale("log", nonpositive="clip")  # most samples sit in the top bin
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize="small", title=legend_title)
    return figure


def log_axis(ax):
    """A logarithmic y axis with readable ticks: 0.1 0.2 0.5 1 2 5."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
