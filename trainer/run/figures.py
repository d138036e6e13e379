"""The pictures of a run: the test split's confusion matrix, reliability diagram, top losses and (regression)
predictions against targets, and the learning-rate range test. Bare matplotlib Figures (trainer/drawing.py)."""
import math

import numpy as np

from trainer.drawing import new_figure


def confusion_figure(confusion, title):
    """The confusion matrix as a heat map, rows = true class, columns = predicted class, counts written in
    the cells when there are few enough classes to read them."""
    classes = confusion.shape[0]
    size = min(3 + 0.45 * classes, 12)
    figure = new_figure(figsize=(size, size * 0.85), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(confusion.numpy(), cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    if classes <= 20:
        ax.set_xticks(range(classes))
        ax.set_yticks(range(classes))
        threshold = confusion.max().item() / 2
        for i in range(classes):
            for j in range(classes):
                count = int(confusion[i, j])
                ax.text(j, i, count, ha="center", va="center", fontsize=8,
                        color="white" if count > threshold else "black")
    return figure


def predictions_figure(predictions, targets, title, *, r2):
    """A regression's predictions against its targets (one dot per value, in the targets' units), with the diagonal
    of perfect predictions."""
    figure = new_figure(figsize=(5.5, 5.5), layout="constrained")
    ax = figure.subplots()
    predictions, targets = predictions.flatten().tolist(), targets.flatten().tolist()
    ax.scatter(targets, predictions, s=8, alpha=0.6)
    low, high = min(targets + predictions), max(targets + predictions)
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="perfect prediction")
    ax.set(title=f"{title}: R² {r2:.3f}", xlabel="target", ylabel="prediction")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return figure


def reliability_figure(calibration, title, *, ece):
    """A reliability diagram: per confidence bin, the accuracy of its samples (bars) against their mean confidence
    (the diagonal is perfect calibration; hatched red, the gap between them), and below, how many samples each bin
    holds. `calibration` is the {"bins", "confidence", "accuracy", "count"} of metrics.json."""
    bins = calibration["bins"]
    edges = [i / bins for i in range(bins)]
    filled = [i for i, n in enumerate(calibration["count"]) if n]
    figure = new_figure(figsize=(5.5, 6.5))  # fixed margins: a layout engine would double the cost of drawing
    ax, count_ax = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    figure.subplots_adjust(left=0.13, right=0.97, top=0.95, bottom=0.08, hspace=0.06)
    accuracy = [calibration["accuracy"][i] for i in filled]
    confidence = [calibration["confidence"][i] for i in filled]
    ax.bar([edges[i] for i in filled], accuracy, width=1 / bins, align="edge", edgecolor="white", label="accuracy")
    ax.bar([edges[i] for i in filled], [abs(c - a) for c, a in zip(confidence, accuracy)],
           bottom=[min(c, a) for c, a in zip(confidence, accuracy)], width=1 / bins, align="edge", fill=False,
           edgecolor="tab:red", hatch="//", linewidth=0.8, label="gap to the mean confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.plot(confidence, accuracy, "o", color="black", markersize=3, label="(mean confidence, accuracy)")
    ax.set(title=f"{title}: ECE {ece:.3f} ({bins} bins)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize="small")
    count_ax.bar(edges, calibration["count"], width=1 / bins, align="edge", color="grey", edgecolor="white")
    for i in filled:
        count_ax.text(edges[i] + 0.5 / bins, calibration["count"][i], calibration["count"][i], ha="center",
                      va="bottom", fontsize=7)
    count_ax.set(xlabel="confidence (top-label probability)", ylabel="samples")
    count_ax.margins(y=0.25)
    return figure


def top_losses_figure(images, labels, title):
    """Images (C,H,W tensors, each shown with its own contrast) tiled in one grid, each under its label. One
    picture in one Axes: a grid of Axes costs several times as much to lay out and draw."""
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    height, width = images[0].shape[1:]
    pad_x, pad_y = max(width // 8, 1), max(height // 3, 2)  # room between tiles, and above each for its label
    mosaic = np.ones((rows * (height + pad_y), columns * (width + pad_x), 3))
    for i, image in enumerate(images):
        image = image.detach().float().cpu()
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)  # any normalisation shows
        top, left = (i // columns) * (height + pad_y) + pad_y, (i % columns) * (width + pad_x)
        mosaic[top:top + height, left:left + width] = image.expand(3, -1, -1).permute(1, 2, 0).numpy()
    figure = new_figure(figsize=(2.1 * columns, 2.2 * rows + 0.3))
    ax = figure.subplots()
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.35 / (2.2 * rows + 0.3))
    ax.imshow(mosaic, interpolation="nearest")
    for i, label in enumerate(labels):  # just above its tile (whose top pixel's edge is half a pixel up)
        top = (i // columns) * (height + pad_y) + pad_y
        ax.text((i % columns) * (width + pad_x) + width / 2 - 0.5, top - 0.5 - 0.1 * pad_y, label, ha="center",
                va="bottom", fontsize=8)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return figure


def lr_find_figure(rates, losses, smoothed, *, suggestion, rule):
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


def lr_tune_figure(search: dict, *, epochs: int):
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
