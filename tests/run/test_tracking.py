"""What a run records in TensorBoard: hyperparameters, the test split's images, and one events file per run."""
import io
import json

import pytest
from matplotlib.image import imread
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.conftest import TINY, compose_config, run
from trainer.run.tracking import run_hparams


def test_run_hparams_names_group_options_usual_knobs_and_overridden_keys():
    cfg = compose_config([*TINY, "trainer.epochs=1", "optimizer.lr=0.01", "model.hidden=[8,8]"])
    values = run_hparams(cfg, {"loss": "ce", "model": "mlp", "hydra/launcher": "basic"},
                         ["optimizer.lr=0.01", "model.hidden=[8,8]", "loss=ce", "trainer.progress=false"])
    assert values == {"loss": "ce", "model": "mlp", "optimizer.lr": 0.01, "data.batch_size": 64,
                      "trainer.epochs": 1, "seed": 0, "model.hidden": "[8, 8]", "trainer.progress": "False"}


def test_a_run_logs_hparams_and_the_test_images_and_writes_per_class_accuracy(tmp_path):
    metrics = run([*TINY, "trainer.epochs=3"], tmp_path)
    per_class = metrics["test/per_class_acc"]
    assert len(per_class) == 4 and sum(per_class) / 4 > 0.5  # chance is 0.25
    assert json.loads((tmp_path / "metrics.json").read_text())["test/per_class_acc"] == per_class
    assert metrics["wall_time_s"] > 0
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == ["confusion/test", "reliability/test", "top_losses/test"]
    # the PNG in the run dir is the same picture as TensorBoard's
    [reliability] = events.Images("reliability/test")
    png = imread(tmp_path / "reliability.png")
    assert png.shape[:2] == (reliability.height, reliability.width)
    assert (imread(io.BytesIO(reliability.encoded_image_string))[..., :3] == png[..., :3]).all()
    assert {"acc/test", "loss/test", "nll/test", "brier/test", "ece/test", "best/val_acc"} <= set(
        events.Tags()["scalars"])
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["optimizer.lr"].number_value == pytest.approx(0.001)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["loss/test", "acc/test", "balanced_acc/test",
                                                             "macro_f1/test", "nll/test", "brier/test", "ece/test",
                                                             "best/val_acc"]
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["checkpoints"]  # no extra TensorBoard sub-run
