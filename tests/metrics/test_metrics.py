"""Metric names, running sums on the device, the confusion matrix, per-class accuracy, the metrics that compare
across losses (NLL, Brier, calibration), the gradient norm's mean and max, and what "best" means."""
import math

import pytest
import torch

from trainer.metrics import (ACC, BALANCED_ACC, BEST, BRIER, CALIBRATION, ECE, ECE_BINS, GRAD_NORM_MAX,
                             GRAD_NORM_MEAN, GRAD_NORM_STEP, LOSS, MACRO_F1, MAX_GRAD_NORM, MONITORABLE, NLL, TEST, VAL,
                             Monitor, monitor_for, per_class_tags, recorded_monitor, result_key, tag)
from trainer.metrics.running import RunningMetrics
from trainer.metrics.scores import balanced_accuracy, macro_f1, per_class_accuracy
from trainer.run.divergence import NonFinite, check_finite, weights_are_finite

LOG_SOFTMAX = lambda logits: logits.log_softmax(dim=1)


def test_names_are_spelled_once_for_tensorboard_history_and_metrics_json():
    assert tag(LOSS, VAL) == "loss/val" and result_key(TEST, ACC) == "test/acc"
    assert (BEST.tag, BEST.best_key) == ("acc/val", "best/val_acc")
    assert MONITORABLE == ("loss/val", "acc/val")
    assert (tag(NLL, VAL), tag(ECE, VAL), tag(BRIER, VAL)) == ("nll/val", "ece/val", "brier/val")
    assert (result_key(TEST, NLL), CALIBRATION, ECE_BINS) == ("test/nll", "test/calibration", 15)
    assert (GRAD_NORM_STEP, GRAD_NORM_MEAN, GRAD_NORM_MAX) == (
        "grad_norm/train_step", "grad_norm/train_mean", "grad_norm/train_max")
    assert MAX_GRAD_NORM == "train/grad_norm_max"
    assert (tag(BALANCED_ACC, VAL), result_key(TEST, MACRO_F1)) == ("balanced_acc/val", "test/macro_f1")
    assert per_class_tags(VAL, [0.5, None, 1.0]) == {"per_class_acc/val/0": 0.5, "per_class_acc/val/2": 1.0}


def test_the_monitor_improves_in_its_direction_and_always_on_the_first_value():
    assert BEST.improved(0.5, None) and BEST.improved(0.6, 0.5) and not BEST.improved(0.5, 0.5)
    lower = Monitor(metric=LOSS, higher_is_better=False)
    assert lower.improved(0.4, 0.5) and not lower.improved(0.6, 0.5) and lower.best_key == "best/val_loss"


def test_running_metrics_weight_every_sample_equally_over_uneven_batches():
    metrics = RunningMetrics(torch.device("cpu"))
    # batch of 3 with mean loss 1.0 and 2 hits, batch of 1 with loss 5.0 and 0 hits
    metrics.update(torch.tensor(1.0), torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), torch.tensor([1, 0, 1]))
    assert float(metrics.running()["acc"]) == pytest.approx(2 / 3, abs=1e-3)
    metrics.update(torch.tensor(5.0), torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    assert metrics.compute() == pytest.approx({"loss": (3 * 1.0 + 5.0) / 4, "acc": 2 / 4})


def test_running_metrics_reduce_in_windows_without_changing_the_result():
    torch.manual_seed(0)
    batches = [(torch.rand(()), torch.randn(4, 3), torch.randint(0, 3, (4,))) for _ in range(70)]
    metrics = RunningMetrics(torch.device("cpu"))
    for batch in batches:
        metrics.update(*batch)
    expected_loss = sum(float(loss) * 4 for loss, _, _ in batches) / 280
    expected_acc = sum(int((logits.argmax(1) == labels).sum()) for _, logits, labels in batches) / 280
    assert metrics.compute() == pytest.approx({"loss": expected_loss, "acc": expected_acc})


def test_a_partial_pass_saved_and_loaded_continues_the_same_sums():
    metrics = RunningMetrics(torch.device("cpu"))
    metrics.update(torch.tensor(2.0), torch.eye(2), torch.tensor([0, 0]))
    resumed = RunningMetrics(torch.device("cpu"))
    resumed.load_state_dict(metrics.state_dict())
    resumed.update(torch.tensor(4.0), torch.eye(2), torch.tensor([1, 1]))
    assert resumed.compute() == pytest.approx({"loss": 3.0, "acc": 0.5})


def test_confusion_matrix_counts_true_against_predicted_over_batches():
    metrics = RunningMetrics("cpu", confusion=True)
    eye = torch.eye(3)
    # batch 1: true 0 -> 0, true 1 -> 2, true 2 -> 2; batch 2: true 1 -> 1, true 1 -> 0
    metrics.update(torch.tensor(1.0), eye[[0, 2, 2]], torch.tensor([0, 1, 2]))
    metrics.update(torch.tensor(1.0), eye[[1, 0]], torch.tensor([1, 1]))
    result = metrics.compute()
    assert result["confusion"].tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 1]]
    assert result["acc"] == pytest.approx(3 / 5)


def test_per_class_accuracy_is_each_rows_diagonal_share_and_none_for_an_absent_class():
    confusion = torch.tensor([[1, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert per_class_accuracy(confusion) == [1.0, pytest.approx(1 / 3), None]


def test_balanced_accuracy_and_macro_f1_of_a_confusion_matrix_are_scikit_learns():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    generator = torch.Generator().manual_seed(0)
    # a majority class, a minority class, a class never predicted and a class with no true sample but predicted
    true = torch.cat([torch.zeros(40), torch.ones(6), torch.full((5,), 2)]).long()
    predicted = torch.where(torch.rand(51, generator=generator) < 0.7, true, torch.randint(0, 4, (51,),
                                                                                            generator=generator))
    predicted[true == 2] = 0  # class 2 is never predicted right
    metrics = RunningMetrics("cpu", confusion=True)
    metrics.update(torch.tensor(1.0), torch.eye(4)[predicted], true)
    result = metrics.compute()
    assert result[BALANCED_ACC] == pytest.approx(balanced_accuracy_score(true, predicted))
    assert result[MACRO_F1] == pytest.approx(f1_score(true, predicted, average="macro", zero_division=0))
    assert balanced_accuracy(torch.tensor([[9, 1], [1, 1]])) == pytest.approx((0.9 + 0.5) / 2)
    assert macro_f1(torch.tensor([[9, 1], [1, 1]])) == pytest.approx((18 / 20 + 2 / 4) / 2)


def test_what_best_means_follows_data_best_for_either_task():
    assert monitor_for({"task": "classification"}) is BEST and monitor_for({"best": "acc"}) is BEST
    assert monitor_for({"best": BALANCED_ACC}) == Monitor(metric=BALANCED_ACC)
    assert monitor_for({"best": MACRO_F1}).best_key == "best/val_macro_f1"
    assert monitor_for({"task": "regression"}) == Monitor(metric="rmse", higher_is_better=False)
    assert monitor_for({"task": "regression", "best": "r2"}).higher_is_better
    assert recorded_monitor({"best/val_balanced_acc": 0.5}) == Monitor(metric=BALANCED_ACC)


def test_one_divergence_check_for_losses_and_weights():
    check_finite("training loss", 0.5, step=3)
    with pytest.raises(NonFinite, match="the training loss became nan by step 3"):
        check_finite("training loss", float("nan"), step=3)
    model = torch.nn.Linear(2, 2)
    assert weights_are_finite(model)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    assert not weights_are_finite(model)


def scored(probabilities, labels, batch=None):
    """RunningMetrics of an evaluation fed these class probabilities (as logits whose softmax they are)."""
    metrics = RunningMetrics("cpu", confusion=True, log_probabilities=LOG_SOFTMAX)
    logits, labels = torch.tensor(probabilities).log(), torch.tensor(labels)
    batch = batch or len(labels)
    for start in range(0, len(labels), batch):
        metrics.update(torch.tensor(0.0), logits[start:start + batch], labels[start:start + batch])
    return metrics.compute()


def test_an_over_confident_prediction_set_has_the_gap_between_confidence_and_accuracy_as_its_ece():
    # always 90% sure, right half of the time: every sample in the bin (0.867, 0.933], ECE = |0.9 - 0.5|
    result = scored([[0.9, 0.1]] * 10, [0, 1] * 5)
    assert result[ECE] == pytest.approx(0.4, abs=1e-6) and result[ACC] == 0.5
    assert result["calibration"]["count"] == [0] * 13 + [10, 0]
    bins = result["calibration"]
    assert bins["confidence"][13] == pytest.approx(0.9) and bins["accuracy"][13] == 0.5
    assert bins["confidence"][0] is None and bins["bins"] == ECE_BINS


def test_a_calibrated_prediction_set_has_an_ece_of_zero():
    # 80% sure and right 8 times in 10; 62% sure and right 5 times in 8 (0.625, in the same bin (0.6, 0.667])
    result = scored([[0.8, 0.2]] * 10 + [[0.38, 0.62]] * 8, [0] * 8 + [1] * 2 + [1] * 5 + [0] * 3)
    assert result[ECE] == pytest.approx(abs(0.62 - 0.625) * 8 / 18, abs=1e-6)
    assert result["calibration"]["count"][9] == 8 and result["calibration"]["count"][11] == 10


def test_ece_weights_each_bins_gap_by_its_share_of_the_samples_over_windows():
    probabilities = [[0.05, 0.95]] * 4 + [[0.62, 0.38]] * 6  # 4 right at 0.95; 3 of 6 right at 0.62
    labels = [1] * 4 + [0, 0, 0, 1, 1, 1]
    expected = (4 * 0.05 + 6 * (0.62 - 0.5)) / 10
    assert scored(probabilities, labels)[ECE] == pytest.approx(expected, abs=1e-6)
    assert scored(probabilities, labels, batch=3)[ECE] == pytest.approx(expected, abs=1e-6)  # uneven batches


def test_nll_and_brier_of_known_probabilities():
    result = scored([[0.9, 0.1], [0.9, 0.1]], [0, 1])
    assert result[NLL] == pytest.approx((-math.log(0.9) - math.log(0.1)) / 2, rel=1e-6)
    # sum over classes of (p - onehot)^2: 0.1^2 + 0.1^2 for the right one, 0.9^2 + 0.9^2 for the wrong one
    assert result[BRIER] == pytest.approx((0.02 + 1.62) / 2, rel=1e-6)


def test_the_gradient_norm_keeps_mean_and_max_leaves_out_skipped_steps_and_survives_a_resume():
    step = lambda metrics, norm: metrics.update(torch.tensor(1.0), torch.eye(2), torch.tensor([0, 1]),
                                                grad_norm=torch.tensor(norm))
    metrics = RunningMetrics("cpu")
    for norm in (1.0, 3.0, float("inf")):  # inf: a step a GradScaler skipped
        step(metrics, norm)
    resumed = RunningMetrics("cpu")  # a run stopped mid-epoch and resumed
    resumed.load_state_dict(metrics.state_dict())
    step(resumed, 2.0)
    result = resumed.compute()
    assert result[GRAD_NORM_MEAN] == pytest.approx(2.0) and result[GRAD_NORM_MAX] == 3.0


def test_a_pass_without_gradient_norms_reports_none():
    metrics = RunningMetrics("cpu")
    metrics.update(torch.tensor(1.0), torch.eye(2), torch.tensor([0, 1]))
    assert GRAD_NORM_MEAN not in metrics.compute()


def test_looking_up_a_metric_name_does_not_import_torch_or_numpy(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    code = "import sys, trainer.metrics.names, trainer.metrics; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    probe = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert probe.stdout.strip() == "[]", probe.stderr
