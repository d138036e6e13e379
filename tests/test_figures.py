"""The pictures: a confusion matrix with its counts, and a sweep's validation curves."""
import torch

from trainer.figures import confusion_figure, curves_figure


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
