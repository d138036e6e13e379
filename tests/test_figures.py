"""The pictures: a confusion matrix with its counts, a reliability diagram, a grid of top losses, the range test's
curve, and a sweep's validation curves."""
import torch

from trainer.figures import confusion_figure, curves_figure, lr_find_figure, reliability_figure, top_losses_figure


def history(losses, accs):
    return [{"epoch": i + 1, "loss/val": loss, "acc/val": acc} for i, (loss, acc) in enumerate(zip(losses, accs))]


def test_the_confusion_figure_writes_each_count_in_its_cell():
    figure = confusion_figure(torch.tensor([[3, 1], [0, 4]]), "test split")
    [ax] = [ax for ax in figure.axes if ax.get_title() == "test split"]
    assert sorted(text.get_text() for text in ax.texts) == ["0", "1", "3", "4"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")


def test_curves_share_a_colour_per_name_and_use_a_log_axis_for_positive_losses():
    series = [("loss=ce", history([1.0, 0.5], [0.5, 0.8])), ("loss=ce", history([1.1, 0.6], [0.4, 0.7])),
              ("loss=mse", history([0.1, 0.05], [0.3, 0.6]))]
    figure = curves_figure(series, legend_title="ranked")
    loss_ax, acc_ax = figure.axes[:2]
    colours = [line.get_color() for line in acc_ax.lines]
    assert colours[0] == colours[1] != colours[2]
    assert loss_ax.get_yscale() == "log"
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["loss=ce", "loss=mse"]


def test_the_reliability_diagram_draws_the_filled_bins_and_writes_their_counts():
    calibration = {"bins": 15, "confidence": [None] * 13 + [0.9, 0.97], "accuracy": [None] * 13 + [0.5, 1.0],
                   "count": [0] * 13 + [10, 30]}
    figure = reliability_figure(calibration, "test split", ece=0.1)
    ax, count_ax = figure.axes
    assert ax.get_title() == "test split: ECE 0.100 (15 bins)"
    assert sorted(text.get_text() for text in count_ax.texts) == ["10", "30"]
    assert [round(bar.get_height(), 6) for bar in ax.containers[0]] == [0.5, 1.0]  # accuracy of the filled bins


def test_top_losses_are_one_grid_with_a_label_per_image():
    images = [torch.rand(3, 8, 8) for _ in range(5)] + [torch.zeros(3, 8, 8)]  # a flat image must draw too
    figure = top_losses_figure(images, [f"{i} / 1 / 0.90" for i in range(6)], "highest test losses")
    [ax] = figure.axes
    assert [text.get_text() for text in ax.texts] == [f"{i} / 1 / 0.90" for i in range(6)]
    assert ax.images[0].get_array().shape[:2] == (2 * (8 + 2), 3 * (8 + 1))  # 3 columns, 2 rows, with room


def test_the_range_test_curve_has_a_log_rate_axis_and_marks_the_suggestion():
    rates = [1e-5 * 10 ** (i / 10) for i in range(40)]
    losses = [2.0] * 20 + [2.0 - 0.1 * i for i in range(15)] + [float("nan")] * 5
    figure = lr_find_figure(rates, losses, losses, suggestion=1e-3, rule="valley")
    [ax] = figure.axes
    assert ax.get_xscale() == "log" and "suggestion 0.001 (valley)" in [t.get_text() for t in ax.get_legend().texts]
