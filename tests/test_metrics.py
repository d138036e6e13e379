"""Metric names, running sums on the device, the confusion matrix, per-class accuracy and what "best" means."""
import pytest
import torch

from trainer.metrics import (ACC, BEST, LOSS, MONITORABLE, TEST, VAL, Monitor, NonFinite, RunningMetrics,
                             check_finite, per_class_accuracy, result_key, tag, weights_are_finite)


def test_names_are_spelled_once_for_tensorboard_history_and_metrics_json():
    assert tag(LOSS, VAL) == "loss/val" and result_key(TEST, ACC) == "test/acc"
    assert (BEST.tag, BEST.best_key) == ("acc/val", "best/val_acc")
    assert MONITORABLE == ("loss/val", "acc/val")


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


def test_one_divergence_check_for_losses_and_weights():
    check_finite("training loss", 0.5, step=3)
    with pytest.raises(NonFinite, match="the training loss became nan by step 3"):
        check_finite("training loss", float("nan"), step=3)
    model = torch.nn.Linear(2, 2)
    assert weights_are_finite(model)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    assert not weights_are_finite(model)
