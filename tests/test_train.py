"""A training run: it learns, writes its checkpoints, metrics.json and TensorBoard scalars, and stops in one
sentence when the loss or the weights stop being numbers or a DataLoader worker dies."""
import json
import os

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import TINY, compose_config, run
from trainer.data import Splits
from trainer.errors import UserError
from trainer.train import train


def scalar_tags(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_the_default_run_learns_digits_and_writes_every_output(tmp_path):
    metrics = run(["trainer.epochs=3", "trainer.progress=false", "trainer.log_every_n_steps=5"], tmp_path)
    assert metrics["test/acc"] > 0.8  # chance is 0.1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert set(stored) == {"test/acc", "test/loss", "best/val_acc", "best/epoch", "epochs", "train/loss",
                           "test/per_class_acc", "wall_time_s", "history"}
    assert stored["epochs"] == 3 and len(stored["history"]) == 3 and stored["test/acc"] == metrics["test/acc"]
    assert stored["best/val_acc"] == max(row["acc/val"] for row in stored["history"])
    assert stored["train/loss"] == stored["history"][-1]["loss/train"]
    assert set(stored["history"][0]) == {"epoch", "loss/train", "acc/train", "loss/val", "acc/val", "lr"}
    assert {"loss/train", "loss/val", "acc/train", "acc/val", "lr", "loss/train_step", "loss/test", "acc/test",
            "best/val_acc"} <= scalar_tags(tmp_path)


def test_train_leaves_the_callers_config_as_it_was(tmp_path):
    from tests.datafiles import write_pngs
    write_pngs(tmp_path / "images", ["cat", "dog"], 6)
    cfg = compose_config(["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=8",
                          "data.num_workers=0", "trainer.epochs=1", "trainer.progress=false"])
    train(cfg, tmp_path / "run")
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
                 "data.source._target_=tests.test_train.dies_in_workers"]
    with pytest.raises(UserError, match=r"a DataLoader worker failed .*: run with data.num_workers=0"):
        run(overrides, tmp_path)
