"""What a run records: the test confusion matrix and per-class accuracy, TensorBoard hyperparameters, and the
check that stops a run whose loss is no longer a number."""
import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from trainer.errors import UserError
from trainer.loop import RunningMetrics, evaluate
from trainer.tracking import per_class_accuracy, run_hparams
from trainer.train import train

TINY = ["data=synthetic", "data.source.num_samples=200", "data.channels=1", "data.image_size=8",
        "data.num_classes=4", "model=mlp"]


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


def test_evaluate_returns_the_confusion_matrix_of_the_whole_loader():
    model = torch.nn.Identity()  # the inputs are the logits
    logits, labels = torch.eye(2)[[0, 1, 1, 1]], torch.tensor([0, 1, 0, 1])
    loader = [(logits[:3], labels[:3]), (logits[3:], labels[3:])]
    result = evaluate(model, torch.nn.CrossEntropyLoss(), loader, "cpu", False, "test")
    assert result["confusion"].tolist() == [[1, 1], [0, 2]] and result["acc"] == 0.75


def test_run_hparams_names_group_options_usual_knobs_and_overridden_keys(cfg_factory):
    cfg = cfg_factory(*TINY, "optimizer.lr=0.01", "model.hidden=[8,8]")
    values = run_hparams(cfg, {"loss": "ce", "model": "mlp", "hydra/launcher": "basic"},
                         ["optimizer.lr=0.01", "model.hidden=[8,8]", "loss=ce", "trainer.progress=false"])
    assert values == {"loss": "ce", "model": "mlp", "optimizer.lr": 0.01, "data.batch_size": 64,
                      "trainer.epochs": 1, "seed": 0, "model.hidden": "[8, 8]", "trainer.progress": "False"}


def test_a_run_logs_hparams_and_a_confusion_image_and_writes_per_class_accuracy(cfg_factory, tmp_path):
    metrics = train(cfg_factory(*TINY), tmp_path)
    per_class = metrics["test/per_class_acc"]
    assert len(per_class) == 4 and all(0 <= acc <= 1 for acc in per_class)
    assert json.loads((tmp_path / "metrics.json").read_text())["test/per_class_acc"] == per_class
    assert metrics["wall_time_s"] > 0
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["confusion/test"]
    assert {"acc/test", "loss/test", "best/val_acc"} <= set(events.Tags()["scalars"])
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["optimizer.lr"].number_value == pytest.approx(0.001)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["loss/test", "acc/test", "best/val_acc"]
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["checkpoints"]  # no extra TensorBoard sub-run


def test_a_loss_that_stops_being_a_number_stops_the_run_with_one_sentence(cfg_factory, tmp_path):
    with pytest.raises(UserError, match=r"^the training loss became nan in epoch 1 by step \d+ of \d+ \(learning rate 1e\+30\): lower optimizer.lr"):
        train(cfg_factory(*TINY, "optimizer=sgd", "optimizer.lr=1e30"), tmp_path)
