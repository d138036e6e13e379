"""The pictures a run and a sweep leave: the confusion matrix of the test split and a sweep's validation curves.
Bare matplotlib Figures: no pyplot backend, so they draw headless; matplotlib is imported only when one is drawn."""
import math

from trainer.metrics import ACC, LOSS, VAL, tag


def confusion_figure(confusion, title):
    """The confusion matrix as a heat map, rows = true class, columns = predicted class, counts written in
    the cells when there are few enough classes to read them."""
    from matplotlib.figure import Figure

    classes = confusion.shape[0]
    size = min(3 + 0.45 * classes, 12)
    figure = Figure(figsize=(size, size * 0.85), layout="constrained")
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


def curves_figure(series, legend_title):
    """Validation loss and accuracy per epoch: `series` is [(name, history)] best first; histories that share a
    name (the seeds of one group) share a colour."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = list(dict.fromkeys(name for name, _ in series))
    styles = ("-", "--", ":", "-.")
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    loss_ax, acc_ax = figure.subplots(1, 2)
    for name, history in series:
        epochs = [row["epoch"] for row in history]
        look = {"color": f"C{names.index(name) % 10}", "marker": "o", "markersize": 3}
        style = styles[(names.index(name) // 10) % len(styles)]
        loss_ax.plot(epochs, [row[tag(LOSS, VAL)] for row in history], style, **look)
        acc_ax.plot(epochs, [row[tag(ACC, VAL)] for row in history], style, label=name, **look)
    losses = [row[tag(LOSS, VAL)] for _, history in series for row in history]
    if all(value > 0 and math.isfinite(value) for value in losses):
        log_axis(loss_ax)  # different losses live on different scales
    loss_ax.set(title="validation loss", xlabel="epoch", ylabel="loss")
    acc_ax.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = acc_ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # one legend entry per colour
    ordered = [name for name in names if name in unique]
    figure.legend([unique[n] for n in ordered], ordered, loc="outside right upper", fontsize="small",
                  title=legend_title)
    return figure


def log_axis(ax):
    """A logarithmic y axis with readable ticks: 0.1 0.2 0.5 1 2 5."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
