"""What a run records in TensorBoard, read back with TensorBoard's own loaders: the hyperparameters and the columns
the HParams tab builds from a folder of a sweep and a regression run, one x axis (the global step) for every chart,
the step loss of short epochs, one tag for the learning rate, the test split's images, and one events file per run."""
import io
import json

import pytest
from matplotlib.image import imread
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context

from tests.conftest import TINY, run, run_cli

DIABETES = ["data=diabetes", "model=mlp", "loss=mse", "trainer.progress=false", "trainer.device=cpu"]


def events(run_dir):
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def hparams_tab(logdir):
    """The experiment TensorBoard's HParams tab shows for `logdir`: its hyperparameter and metric columns, in the
    order the tab lists them (as `tensorboard --logdir` serves it)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    tab = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer,
                                                        data_provider=provider))
    request = context.RequestContext()
    return tab.experiment_from_metadata(request, "", include_metrics=True,
                                        hparams_run_to_tag_to_content=tab.hparams_metadata(request, ""),
                                        data_provider_hparams=tab.hparams_from_data_provider(request, "", None))


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """A sweep over loss and seed and a regression run of diabetes (9 batches an epoch) in one folder."""
    root = tmp_path_factory.mktemp("outputs")
    result = run_cli(root, "-m", *TINY, "loss=ce,nll", "seed=0,1", "trainer.epochs=1",
                     f"hydra.sweep.dir={root / 'sweep'}")
    assert result.returncode == 0, result.stderr[-2000:]
    run([*DIABETES, "trainer.epochs=5"], root / "regression")
    return root


def test_every_swept_key_is_an_hparams_column_listed_first_with_its_type(mixed_folder):
    experiment = hparams_tab(mixed_folder / "sweep")
    infos = {info.name: info for info in experiment.hparam_infos}
    assert [info.name for info in experiment.hparam_infos][:2] == ["loss", "seed"]  # differing first: ticked
    assert infos["loss"].differs and infos["seed"].differs and not infos["model"].differs
    assert api_pb2.DataType.Name(infos["seed"].type) == "DATA_TYPE_STRING"  # shown as 0 and 1, not 0.0000
    assert api_pb2.DataType.Name(infos["optimizer.lr"].type) == "DATA_TYPE_FLOAT64"
    assert "experiment" not in infos and "hparams_search" not in infos  # groups no run uses
    metrics = [info.name.tag for info in experiment.metric_infos]
    assert metrics[0] == "best/val_acc" and "loss/test" not in metrics[:5]  # ranked by, ticked and coloured by


def test_a_regression_runs_metrics_are_columns_in_a_folder_with_classification_runs(mixed_folder):
    metrics = {info.name.tag for info in hparams_tab(mixed_folder).metric_infos}
    assert {"best/val_acc", "acc/test", "best/val_rmse", "rmse/test", "mae/test", "r2/test"} <= metrics
    assert events(mixed_folder / "regression").Scalars("rmse/test")[0].value == pytest.approx(
        json.loads((mixed_folder / "regression" / "metrics.json").read_text())["test/rmse"])


def test_every_chart_is_against_the_global_step_and_short_epochs_log_their_step_loss(mixed_folder):
    scalars = events(mixed_folder / "regression")
    steps = lambda name: [event.step for event in scalars.Scalars(name)]
    assert steps("loss/train_step") == steps("grad_norm/train_step") == [20, 40]  # 9 steps an epoch, counted over the run
    assert steps("loss/train") == steps("loss/val") == steps("perf/samples_per_s") == [9, 18, 27, 36, 45]
    assert [event.value for event in scalars.Scalars("epoch")] == [1, 2, 3, 4, 5]
    assert steps("loss/test") == steps("best/val_rmse") == [45]
    assert [event.step for event in scalars.Images("predictions/test")] == [45]


def test_the_learning_rate_has_one_tag(tmp_path):
    metrics = run([*TINY, "trainer.epochs=1", "optimizer.lr=auto", "lr_find.steps=10"], tmp_path)
    tags = events(tmp_path).Tags()["scalars"]
    assert "lr" in tags and "optimizer/lr" not in tags
    assert events(tmp_path).Scalars("lr")[0].value == pytest.approx(metrics["optimizer/lr"])


def test_a_run_logs_the_test_images_once_as_its_pngs_and_writes_per_class_accuracy(tmp_path):
    metrics = run([*TINY, "trainer.epochs=3"], tmp_path)
    per_class = metrics["test/per_class_acc"]
    assert len(per_class) == 4 and sum(per_class) / 4 > 0.5  # chance is 0.25
    assert json.loads((tmp_path / "metrics.json").read_text())["test/per_class_acc"] == per_class
    assert metrics["wall_time_s"] > 0
    logged = events(tmp_path)
    assert sorted(logged.Tags()["images"]) == ["confusion/test", "reliability/test", "top_losses/test"]
    for name, png in (("reliability/test", "reliability.png"), ("top_losses/test", "top_losses.png")):
        [image] = logged.Images(name)
        assert image.encoded_image_string == (tmp_path / png).read_bytes()  # one PNG, drawn and encoded once
        assert image.width <= 420  # TensorBoard's card (about 330 px) shows it at 0.8 of its size or more
        assert imread(io.BytesIO(image.encoded_image_string)).shape[:2] == (image.height, image.width)
    assert {"acc/test", "loss/test", "nll/test", "brier/test", "ece/test", "best/val_acc"} <= set(
        logged.Tags()["scalars"])
    assert {"balanced_acc/test", "macro_f1/test", "per_class_acc/test/0"} <= set(logged.Tags()["scalars"])
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["checkpoints"]  # no extra TensorBoard sub-run


class StoppedPainter:
    """A painter whose wait is cut by a signal (Stop is raised where the run waits for a reply)."""

    def __init__(self):
        self.received, self.closed, self.killed = 0, False, False
        self.process = self

    def submit(self, draw, kwargs):
        pass

    def receive(self):
        self.received += 1
        raise KeyboardInterrupt  # what a signal raises in the waiting run

    def kill(self):
        self.killed = True

    def close(self):
        self.closed = True


def test_a_signal_while_waiting_for_the_pictures_does_not_wait_again_when_the_run_closes(tmp_path, monkeypatch):
    """Stopped while it waits for its pictures, a run closes its records without waiting for the rest again (the
    painter's replies are out of step: it was waiting forever), and the painter is retired."""
    from trainer.run import tracking
    from trainer.run.figures import reliability_figure

    stopped = StoppedPainter()
    monkeypatch.setattr(tracking, "painter", lambda: stopped)
    tracker = tracking.Tracker(tmp_path)
    for name in ("a", "b"):
        tracker.picture(f"{name}/test", reliability_figure, {}, step=1)
    with pytest.raises(KeyboardInterrupt):
        tracker.finish_pictures()
    tracker.close()  # returns: nothing is waited for twice
    assert stopped.received == 1 and stopped.killed and stopped.closed
