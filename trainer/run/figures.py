"""The pictures of a run: the test split's confusion matrix, reliability diagram, top losses and (regression)
predictions against targets, and the learning-rate range test. Bare matplotlib Figures (trainer/drawing.py)."""
from __future__ import annotations

import math
import unicodedata
from typing import TYPE_CHECKING

import numpy as np

from trainer.drawing import CARD_DPI, card_figure, new_figure, set_margins

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.figure import Figure


def label_inches(names: Sequence[object]) -> float:
    """Room for tick labels of class names at 8 pt, in inches: about 0.06 in per character, twice that for a wide
    (CJK) one (Unicode's East Asian Width), at most 1.5 in; fixed margins (trainer/drawing.py:set_margins) need it
    known before drawing."""
    return min(0.06 * max((text_width(str(name)) for name in names), default=0), 1.5)


def confusion_figure(confusion: np.ndarray, title: str, names: Sequence[object] | None = None) -> Figure:
    """The confusion matrix as a heat map, rows = true class, columns = predicted class, counts written in the cells
    and the axes labelled with the class names (when the dataset has them) when there are few enough classes to read
    them. Up to 10 classes with short names it fits TensorBoard's image card (400 px)."""
    confusion = np.asarray(confusion)
    classes = confusion.shape[0]
    side = max(2.6, classes * (0.27 if classes <= 20 else 0.12))  # inches: a cell holds a 3-digit count
    label = label_inches(names) if names is not None and classes <= 20 else 0.0
    figure = card_figure(side + 1.35 + label, side + 0.85 + label)
    set_margins(figure, left=0.55 + label, right=0.8, top=0.35, bottom=0.5 + label)
    ax = figure.subplots()
    image = ax.imshow(confusion, cmap="Blues", interpolation="nearest")
    box = ax.get_position()  # the colorbar in its own fixed place: no layout pass
    figure.colorbar(image, cax=figure.add_axes((box.x1 + 0.1 / figure.get_figwidth(), box.y0,
                                                0.12 / figure.get_figwidth(), box.height)))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("predicted class", fontsize=9)
    ax.set_ylabel("true class", fontsize=9)
    if classes <= 20:
        ax.set_xticks(range(classes))
        ax.set_yticks(range(classes))
        ax.tick_params(labelsize=8, length=2)
        if names is not None:  # a user's own names, in any script (trainer/drawing.py)
            ax.set_xticklabels([str(name) for name in names], rotation=45, ha="right")
            ax.set_yticklabels([str(name) for name in names])
        threshold = confusion.max() / 2
        for (i, j), count in np.ndenumerate(confusion):
            ax.text(j, i, int(count), ha="center", va="center", fontsize=7.5,
                    color="white" if count > threshold else "black")
    return figure


def predictions_figure(predictions: np.ndarray, targets: np.ndarray, title: str, *, r2: float) -> Figure:
    """A regression's predictions against its targets (one dot per value, in the targets' units), with the diagonal
    of perfect predictions."""
    figure = card_figure(3.8, 3.8)
    set_margins(figure, left=0.6, right=0.15, top=0.35, bottom=0.5)
    ax = figure.subplots()
    predictions, targets = np.asarray(predictions).flatten().tolist(), np.asarray(targets).flatten().tolist()
    ax.scatter(targets, predictions, s=6, alpha=0.6, linewidths=0)
    low, high = min(targets + predictions), max(targets + predictions)
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="perfect prediction")
    ax.set_title(f"{title}: R² {r2:.3f}", fontsize=10)
    ax.set_xlabel("target", fontsize=9)
    ax.set_ylabel("prediction", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return figure


def reliability_figure(calibration: dict, title: str, *, ece: float) -> Figure:
    """A reliability diagram: per confidence bin, the accuracy of its samples (bars) against their mean confidence
    (the diagonal is perfect calibration; hatched red, the gap between them), and below, how many samples each bin
    holds. `calibration` is the {"bins", "confidence", "accuracy", "count"} of metrics.json. The legend sits above
    the plot, where it covers no bar."""
    bins = calibration["bins"]
    edges = [i / bins for i in range(bins)]
    filled = [i for i, n in enumerate(calibration["count"]) if n]
    figure = card_figure(3.8, 4.7)
    ax, count_ax = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    set_margins(figure, left=0.6, right=0.15, top=0.8, bottom=0.45, hspace=0.08)
    accuracy = [calibration["accuracy"][i] for i in filled]
    confidence = [calibration["confidence"][i] for i in filled]
    ax.bar([edges[i] for i in filled], accuracy, width=1 / bins, align="edge", edgecolor="white", label="accuracy")
    ax.bar([edges[i] for i in filled], [abs(c - a) for c, a in zip(confidence, accuracy)],
           bottom=[min(c, a) for c, a in zip(confidence, accuracy)], width=1 / bins, align="edge", fill=False,
           edgecolor="tab:red", hatch="//", linewidth=0.8, label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.plot(confidence, accuracy, "o", color="black", markersize=3, label="mean confidence, accuracy")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.set_ylabel("accuracy", fontsize=9)
    ax.set_title(f"{title}: ECE {ece:.3f} ({bins} bins)", fontsize=10, pad=30)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01, 1, 0.2), mode="expand", ncols=2, fontsize=7,
              borderaxespad=0, handlelength=1.5, columnspacing=0.8, frameon=False)
    count_ax.bar(edges, calibration["count"], width=1 / bins, align="edge", color="grey", edgecolor="white")
    for i in filled:
        count_ax.text(edges[i] + 0.5 / bins, calibration["count"][i], calibration["count"][i], ha="center",
                      va="bottom", fontsize=6.5)
    count_ax.set_xlabel("confidence (top-label probability)", fontsize=9)
    count_ax.set_ylabel("samples", fontsize=9)
    for axes in (ax, count_ax):
        axes.tick_params(labelsize=8)
    count_ax.margins(y=0.3)
    return figure


TILE_PX, LABEL_PT = 88, 7.5  # a top-losses tile's width on the picture, its label's text size


def top_losses_figure(images: Sequence[np.ndarray], labels: Sequence[str], title: str) -> Figure:
    """Images (C,H,W arrays, each shown with its own contrast) tiled in one grid, each under its label (wrapped at
    " / " when it is wider than its tile). One picture in one Axes: a grid of Axes costs several times as much to lay
    out and draw. Four columns of TILE_PX fit TensorBoard's image card."""
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    height, width = images[0].shape[1:]
    scale = TILE_PX / (width * 1.15)  # picture pixels per image pixel
    chars = max(round(TILE_PX * 1.2 / (LABEL_PT * CARD_DPI / 72 * 0.6)), 8)  # of the label font that fit a tile
    labels = [wrapped(label, chars) for label in labels]
    lines = max(label.count("\n") + 1 for label in labels)
    pad_x = max(round(width * 0.15), 1)
    pad_y = math.ceil((lines * LABEL_PT * 1.25 * CARD_DPI / 72 + 4) / scale)  # room above each tile for its label
    mosaic = np.ones((rows * (height + pad_y), columns * (width + pad_x), 3))
    for i, image in enumerate(images):
        image = np.asarray(image, dtype=np.float64)
        image = (image - image.min()) / max(image.max() - image.min(), 1e-12)  # any normalisation shows
        top, left = (i // columns) * (height + pad_y) + pad_y, (i % columns) * (width + pad_x)
        mosaic[top:top + height, left:left + width] = np.broadcast_to(image, (3, height, width)).transpose(1, 2, 0)
    figure = card_figure(mosaic.shape[1] * scale / CARD_DPI + 0.1, mosaic.shape[0] * scale / CARD_DPI + 0.4)
    set_margins(figure, left=0.05, right=0.05, top=0.35, bottom=0.05)
    ax = figure.subplots()
    ax.imshow(mosaic, interpolation="nearest", aspect="auto")
    for i, label in enumerate(labels):  # just above its tile (whose top pixel's edge is half a pixel up)
        top = (i // columns) * (height + pad_y) + pad_y
        ax.text((i % columns) * (width + pad_x) + width / 2 - 0.5, top - 0.5 - 2 / scale, label, ha="center",
                va="bottom", fontsize=LABEL_PT, linespacing=1.1)
    ax.axis("off")
    ax.set_title(title, fontsize=8.5)
    return figure


def text_width(text: str) -> int:
    """The width of `text` in Latin characters: a wide (CJK) character counts two (Unicode's East Asian Width)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrapped(label: str, chars: int, separator: str = " / ") -> str:
    """`label` in lines of at most `chars` Latin characters' width where it can (text_width), broken only after a
    `separator`."""
    lines = []
    for part in label.split(separator):
        if lines and text_width(lines[-1]) + len(separator) + text_width(part) <= chars:
            lines[-1] += separator + part
        else:
            lines[-1:] = [lines[-1] + separator.rstrip()] if lines else []
            lines.append(part)
    return "\n".join(lines)


def lr_find_figure(rates: Sequence[float], losses: Sequence[float], smoothed: Sequence[float], *, suggestion: float,
                   rule: str) -> Figure:
    """The learning-rate range test: the loss of every batch (faint) and its smoothed curve against the rate on a
    log axis, the suggestion marked."""
    figure = new_figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    ax.plot(rates, losses, color="C0", alpha=0.3, linewidth=1, label="batch loss")
    ax.plot(rates, smoothed, color="C0", linewidth=2, label="smoothed loss")
    ax.axvline(suggestion, color="C3", linestyle="--", linewidth=1)
    ax.plot([suggestion], [smoothed[min(range(len(rates)), key=lambda i: abs(rates[i] - suggestion))]], "o",
            color="C3", label=f"suggestion {suggestion:g} ({rule})")
    ax.set_xscale("log")
    finite = [value for value in [*losses, *smoothed] if math.isfinite(value)]
    if finite and math.isfinite(smoothed[0]):  # the diverged end would squash the rest of the curve
        low, high = min(finite), 1.25 * max(smoothed[0], min(finite))
        ax.set_ylim(low - 0.05 * (high - low), high)
    ax.set(title="learning-rate range test", xlabel="learning rate", ylabel="training loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return figure


def lr_tune_figure(search: dict, *, epochs: int) -> Figure:
    """optimizer.lr=tune's trials (lr_tune.json's record): left, each trial's validation value per epoch (a pruned
    trial's line stops where the pruner stopped it); right, each trial's best against its rate on a log axis,
    pruned trials hollow, the chosen rate and the optimizer's default marked."""
    figure = new_figure(figsize=(11, 4.5), layout="constrained")
    curves, rates = figure.subplots(1, 2)
    for index, trial in enumerate(search["trials"]):
        look = {"color": f"C{index % 10}", "linestyle": "-" if trial["state"] == "complete" else ":"}
        curves.plot(range(1, len(trial["values"]) + 1), trial["values"], marker="o", markersize=3,
                    label=f"{trial['lr']:g} ({trial['state']})", **look)
        if trial["best"] is not None:
            rates.plot([trial["lr"]], [trial["best"]], "o", color=look["color"], markersize=7,
                       fillstyle="full" if trial["state"] == "complete" else "none")
    rates.axvline(search["chosen"], color="C3", linestyle="--", linewidth=1, label=f"chosen {search['chosen']:g}")
    if search["default"] is not None:
        rates.axvline(search["default"], color="grey", linestyle=":", linewidth=1,
                      label=f"optimizer's default {search['default']:g}")
    curves.set(title=f"trials (up to {epochs} epochs each)", xlabel="epoch", ylabel=search["metric"])
    rates.set(title=f"best {search['metric']} of each trial (hollow: pruned)", xlabel="learning rate",
              ylabel=search["metric"], xscale="log")
    for ax in (curves, rates):
        ax.grid(alpha=0.3, which="both")
    curves.legend(fontsize="x-small", title="lr (state)", title_fontsize="x-small")
    rates.legend(fontsize="small")
    return figure
