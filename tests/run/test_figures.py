"""The pictures: a confusion matrix with its counts, a reliability diagram, a grid of top losses, the range test's
curve, a sweep's curves (a mean line and a band per seed group) and the overlay of the groups' reliability diagrams."""
import math

import numpy as np
import torch

from trainer.metrics import ACC, LOSS, NLL, TRAIN, VAL, tag
from trainer.run.figures import (confusion_figure, lr_find_figure, reliability_figure, top_losses_figure,
                                  wrapped)
from trainer.sweep.figures import CURVE_PANELS, curves_figure, reliability_overlay_figure
from trainer.sweep.pictures import Curve

NAN = math.nan


def curve(means, lows=None, highs=None, runs=None, log=False):
    """A Curve as trainer.sweep.pictures.group_curves gives it; no band without lows and highs, one run (the means)
    without runs."""
    lows, highs = lows or [NAN] * len(means), highs or [NAN] * len(means)
    epochs = list(range(1, len(means) + 1))
    return Curve(epochs, means, lows, highs, [(epochs, run) for run in runs or [means]], log)


def test_the_confusion_figure_writes_each_count_in_its_cell():
    figure = confusion_figure(torch.tensor([[3, 1], [0, 4]]), "test split")
    [ax] = [ax for ax in figure.axes if ax.get_title() == "test split"]
    assert sorted(text.get_text() for text in ax.texts) == ["0", "1", "3", "4"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")


def test_the_curves_show_each_jobs_own_loss_next_to_the_validation_nll_and_accuracy():
    series = [("loss=ce", {tag(LOSS, TRAIN): curve([1.0, 0.5]), tag(LOSS, VAL): curve([1.1, 0.6]),
                           tag(NLL, VAL): curve([1.1, 0.6]), tag(ACC, VAL): curve([0.5, 0.8])})]
    figure = curves_figure(series, legend_title="ranked")
    assert [ax.get_title() for ax in figure.axes] == [title for _, title in CURVE_PANELS] == [
        "training loss (each job's own loss)", "validation loss (each job's own loss)",
        "validation NLL (compares across losses)", "validation accuracy"]
    assert [ax.lines[0].get_ydata().tolist() for ax in figure.axes] == [[1.0, 0.5], [1.1, 0.6], [1.1, 0.6],
                                                                      [0.5, 0.8]]


def test_a_seed_group_is_a_thin_line_per_seed_a_bold_mean_and_a_band_and_the_legend_says_what_the_band_is():
    series = [("loss=ce", {tag(ACC, VAL): curve([0.5, 0.8], lows=[0.4, 0.75], highs=[0.6, 0.85],
                                                runs=[[0.4, 0.75], [0.6, 0.85]])}),
              ("loss=mse", {tag(ACC, VAL): curve([0.3, 0.6])})]
    figure = curves_figure(series, legend_title="band: the seeds' range")
    acc_ax = figure.axes[3]
    seed_0, seed_1, ce, mse = acc_ax.lines  # each seed of ce thin, then its mean; mse's one run is its mean
    assert [line.get_linewidth() for line in acc_ax.lines] == [0.7, 0.7, 2, 2]
    assert seed_0.get_ydata().tolist() == [0.4, 0.75] and ce.get_ydata().tolist() == [0.5, 0.8]
    assert seed_0.get_color() == ce.get_color() != mse.get_color()
    [band, no_band] = acc_ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert (ys.min(), ys.max()) == (0.4, 0.85)  # the band spans the interval's bounds
    assert len(no_band.get_paths()) == 0  # nan bounds (a single seed) draw no band
    [legend] = figure.legends
    assert legend.get_title().get_text() == "band: the seeds' range"
    assert [text.get_text() for text in legend.get_texts()] == ["loss=ce", "loss=mse"]


def test_loss_panels_use_a_log_axis_for_positive_losses_and_accuracy_stays_linear():
    series = [("loss=ce", {tag(LOSS, TRAIN): curve([1.0, 0.5], log=True), tag(ACC, VAL): curve([0.5, 0.8])}),
              ("loss=mse", {tag(LOSS, TRAIN): curve([0.1, 0.05], log=True), tag(ACC, VAL): curve([0.3, 0.6])})]
    train_ax, _, _, acc_ax = curves_figure(series, legend_title="ranked").axes
    assert (train_ax.get_yscale(), acc_ax.get_yscale()) == ("log", "linear")


def test_a_panel_no_run_has_a_metric_for_says_so():
    series = [("loss=ce", {tag(ACC, VAL): curve([0.5, 0.8])})]  # a run from before nll/val existed
    nll_ax = curves_figure(series, legend_title="ranked").axes[2]
    assert [text.get_text() for text in nll_ax.texts] == ["no nll/val in these runs' history"]
    assert len(nll_ax.lines) == 0


def test_the_reliability_overlay_draws_each_groups_filled_bins_against_the_diagonal():
    ce = {"bins": 3, "confidence": [None, 0.5, 0.9], "accuracy": [None, 0.4, 0.95], "count": [0, 10, 90]}
    mse = {"bins": 3, "confidence": [0.2, 0.6, None], "accuracy": [0.3, 0.7, None], "count": [5, 20, 0]}
    figure = reliability_overlay_figure([("loss=ce", ce, [ce]), ("loss=mse", mse, [mse])], legend_title="merged")
    top, bottom = figure.axes
    diagonal, ce_line, mse_line = top.lines
    assert diagonal.get_xydata().tolist() == [[0, 0], [1, 1]]
    assert ce_line.get_xydata().tolist() == [[0.5, 0.4], [0.9, 0.95]]  # the empty bin is left out
    assert mse_line.get_xydata().tolist() == [[0.2, 0.3], [0.6, 0.7]]
    assert [text.get_text() for text in top.get_legend().get_texts()] == ["perfectly calibrated", "loss=ce", "loss=mse"]
    counts = [np.asarray(stairs.get_data().values).tolist() for stairs in bottom.patches]
    assert counts == [[0, 10, 90], [5, 20, 0]]


def test_the_reliability_overlay_draws_each_seed_thin_under_the_merged_curve():
    seed_0 = {"bins": 2, "confidence": [0.3, 0.8], "accuracy": [0.2, 0.9], "count": [4, 6]}
    seed_1 = {"bins": 2, "confidence": [0.4, 0.9], "accuracy": [0.3, 0.7], "count": [2, 8]}
    merged = {"bins": 2, "confidence": [0.35, 0.85], "accuracy": [0.25, 0.8], "count": [6, 14]}
    top, _ = reliability_overlay_figure([("loss=ce", merged, [seed_0, seed_1])]).axes
    assert [line.get_linewidth() for line in top.lines[1:]] == [0.7, 0.7, 2]
    assert top.lines[1].get_xydata().tolist() == [[0.3, 0.2], [0.8, 0.9]]


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
    figure = lr_find_figure(rates, losses, losses, suggestion=1e-3, rule="middle of the fall")
    [ax] = figure.axes
    assert ax.get_xscale() == "log" and "suggestion 0.001 (middle of the fall)" in [t.get_text() for t in ax.get_legend().texts]


def test_a_tile_label_in_hangul_wraps_at_its_drawn_width_not_its_character_count():
    # a Hangul syllable is drawn about twice as wide as a Latin letter: 12 Latin widths hold "cat / dog /" but
    # not "고양이 / 고양이 /" (6 syllables are 12 widths alone)
    assert wrapped("cat / dog / 0.81", 12) == "cat / dog /\n0.81"
    assert wrapped("고양이 / 고양이 / 0.81", 12) == "고양이 /\n고양이 /\n0.81"
