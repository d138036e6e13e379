"""A training run: it learns, writes its checkpoints, metrics.json, TensorBoard scalars and the test split's pictures,
scores every loss on its predicted probabilities, measures and clips the gradient norm, and stops in one sentence
when the loss or the weights stop being numbers or a DataLoader worker dies."""
import json
import os

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import TINY, compose_config, run
from trainer.data import Splits
from trainer.errors import UserError
from trainer.run.assemble import assemble
from trainer.run.rundir import Place
from trainer.run.train import train


def scalar_tags(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_the_default_run_learns_digits_and_writes_every_output(tmp_path):
    metrics = run(["trainer.epochs=3", "trainer.progress=false", "trainer.log_every_n_steps=5"], tmp_path)
    assert metrics["test/acc"] > 0.8  # chance is 0.1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert set(stored) == {"test/acc", "test/balanced_acc", "test/macro_f1", "test/loss", "test/nll", "test/brier",
                           "test/ece", "test/calibration", "best/val_acc", "best/epoch", "epochs", "train/loss",
                           "train/grad_norm_max", "test/per_class_acc", "wall_time_s", "history"}
    assert stored["epochs"] == 3 and len(stored["history"]) == 3 and stored["test/acc"] == metrics["test/acc"]
    assert stored["best/val_acc"] == max(row["acc/val"] for row in stored["history"])
    assert stored["train/loss"] == stored["history"][-1]["loss/train"]
    assert set(stored["history"][0]) == {"epoch", "loss/train", "acc/train", "loss/val", "acc/val", "balanced_acc/val",
                                         "macro_f1/val", "nll/val", "brier/val", "ece/val", "lr",
                                         "grad_norm/train_mean", "grad_norm/train_max", "perf/samples_per_s",
                                         "perf/epoch_s"}
    # 1257 training images a pass; an epoch's seconds hold its training steps and its validation
    assert all(0 < 1257 / row["perf/samples_per_s"] < row["perf/epoch_s"] for row in stored["history"])
    assert stored["train/grad_norm_max"] == max(row["grad_norm/train_max"] for row in stored["history"]) > 0
    assert {"loss/train", "loss/val", "acc/train", "acc/val", "nll/val", "brier/val", "ece/val", "lr",
            "grad_norm/train_mean", "grad_norm/train_max", "loss/train_step", "grad_norm/train_step", "loss/test",
            "acc/test", "nll/test", "brier/test", "ece/test", "best/val_acc", "perf/samples_per_s", "perf/epoch_s",
            "epoch", "balanced_acc/val", "macro_f1/test", "per_class_acc/val/0", "per_class_acc/test/9"
            } <= scalar_tags(tmp_path)
    assert {"reliability.png", "top_losses.png", "top_losses.csv"} <= {p.name for p in tmp_path.iterdir()}


def test_train_leaves_the_callers_config_as_it_was(tmp_path):
    from tests.datafiles import write_pngs
    write_pngs(tmp_path / "images", ["cat", "dog"], 6)
    cfg = compose_config(["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=8",
                          "data.num_workers=0", "trainer.epochs=1", "trainer.progress=false"])
    train(cfg, Place(tmp_path / "run"))
    assert cfg.data.num_classes is None  # the run filled in 2 on its own copy


def test_a_loss_that_stops_being_a_number_stops_the_run_with_one_sentence(tmp_path):
    with pytest.raises(UserError, match=r"^the training loss became nan in epoch 1 by step \d+ of \d+ "
                                        r"\(learning rate 1e\+30\): lower optimizer.lr or pick another loss; "
                                        r"no checkpoint was written$"):
        run([*TINY, "trainer.epochs=1", "optimizer=sgd", "optimizer.lr=1e30"], tmp_path)


def test_a_diverging_loss_stops_naming_epoch_step_and_lr_and_keeps_the_good_checkpoint(tmp_path):
    # epoch 1 trains with lr 0.01, then the step schedule multiplies it by 1e30
    diverge = ["trainer.progress=false", "optimizer=sgd", "scheduler=step", "scheduler.build.step_size=1",
               "scheduler.build.gamma=1e30", "trainer.epochs=3", "trainer.log_every_n_steps=1"]
    with pytest.raises(UserError, match=r"became nan in epoch 2 by step \d+ of 20 \(learning rate 1e\+28\): "
                                        r"lower optimizer.lr .* keeps epoch 1") as error:
        run(diverge, tmp_path)
    assert error.value.epoch == 2
    good = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert good["progress"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in good["model"].values())


class DiesInWorkers(torch.utils.data.Dataset):
    def __init__(self, n):
        self.x, self.targets = torch.randn(n, 4), torch.arange(n) % 3

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        if torch.utils.data.get_worker_info() is not None:
            os._exit(1)  # a worker killed outright (out of memory, a crashing library)
        return self.x[i], self.targets[i]


def dies_in_workers(seed, **_):
    return Splits(train=DiesInWorkers(60), val=DiesInWorkers(12), test=DiesInWorkers(12))


def test_a_crashing_dataloader_worker_is_reported_with_the_num_workers_hint(tmp_path):
    overrides = ["model=mlp", "data=iris", "trainer.progress=false", "data.num_workers=1",
                 "data.source._target_=tests.run.test_train.dies_in_workers"]
    with pytest.raises(UserError, match=r"a DataLoader worker failed .*: run with data.num_workers=0"):
        run(overrides, tmp_path)


@pytest.mark.parametrize("loss", ["ce", "nll"])
def test_the_test_nll_of_ce_and_nll_is_their_test_loss(loss, tmp_path):
    metrics = run([*TINY, "trainer.epochs=2", f"loss={loss}"], tmp_path)
    assert metrics["test/nll"] == pytest.approx(metrics["test/loss"], abs=1e-6)
    assert all(row["nll/val"] == pytest.approx(row["loss/val"], abs=1e-6) for row in metrics["history"])


def test_the_test_calibration_is_stored_as_bins_with_confidence_accuracy_and_count(tmp_path):
    metrics = run([*TINY, "trainer.epochs=2"], tmp_path)
    calibration = json.loads((tmp_path / "metrics.json").read_text())["test/calibration"]
    assert set(calibration) == {"bins", "confidence", "accuracy", "count"} and calibration["bins"] == 15
    assert sum(calibration["count"]) == 30  # the test split of 200 samples
    filled = [i for i, n in enumerate(calibration["count"]) if n]
    assert all(calibration["confidence"][i] is None and calibration["accuracy"][i] is None
               for i in range(15) if i not in filled)
    assert all(i / 15 < calibration["confidence"][i] <= (i + 1) / 15 for i in filled)
    gaps = sum(abs(calibration["confidence"][i] - calibration["accuracy"][i]) * calibration["count"][i]
               for i in filled) / 30
    assert gaps == pytest.approx(metrics["test/ece"], abs=1e-6) and 0 <= metrics["test/brier"] <= 2


def test_gradient_clipping_bounds_every_step_by_the_clip_value(tmp_path):
    overrides = [*TINY, "trainer.epochs=1", "optimizer=sgd", "optimizer.momentum=0", "optimizer.lr=0.5",
                 "trainer.gradient_clip_val=0.01"]
    initial = assemble(compose_config(overrides)).model.state_dict()
    metrics = run(overrides, tmp_path)
    final = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["model"]
    moved = torch.cat([(final[key] - initial[key]).flatten() for key in initial]).norm().item()
    steps = 3  # 140 training samples in batches of 64; plain SGD moves lr * gradient, at most lr * 0.01 a step
    assert 0 < moved <= steps * 0.5 * 0.01 * (1 + 1e-4)
    assert metrics["train/grad_norm_max"] > 0.01  # the norm recorded is the one before clipping
