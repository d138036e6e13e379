"""Every option of every config group is composed and trained; losses and optimizers must learn the task."""
import json
import math
import os
import pickle

import numpy as np
import pytest
import torchvision

from tests.conftest import CONF, compose_config, options
from tests.test_images import write_mnist, write_pngs
from trainer.train import train

# hparams_search configures Hydra's sweeper, not the run: tests/test_sweep_runs.py runs every option of it as a sweep
GROUPS = sorted(path.name for path in CONF.iterdir() if path.is_dir() and path.name != "hparams_search")
TINY_IMAGES = ["data=synthetic", "data.source.num_samples=60", "data.image_size=32"]


def write_cifar10(root):
    """Tiny CIFAR-10 pickles in torchvision's layout; the real files' checksums are patched out by the caller."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        labels = [i % 10 for i in range(20)]
        batch = {"data": rng.integers(0, 255, (20, 3 * 32 * 32), dtype=np.uint8), "labels": labels}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))


def needs(group, option, tmp_path, monkeypatch):
    """The overrides (and files) an option needs to run offline on tiny data: a dataset file in data.root,
    random instead of downloaded weights, images large enough for the network."""
    if (group, option) == ("data", "iris"):
        return ["model=mlp"]
    if (group, option) == ("data", "synthetic"):
        return ["data.source.num_samples=300"]
    if group == "data" and option in ("mnist", "fashion_mnist"):
        write_mnist(tmp_path / "data" / {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[option])
        return [f"data.root={tmp_path / 'data'}", "data.download=false"]
    if group == "model" and option.endswith("_transfer"):
        return ["model.weights=null", *TINY_IMAGES]
    if option == "image_folder":
        write_pngs(tmp_path / "images", ["cat", "dog", "owl"], 6)
        return [f"data.root={tmp_path / 'images'}"]
    if option.startswith("cifar10"):
        # our tiny files are not the real ones: check that they exist, not their md5
        monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
        write_cifar10(tmp_path / "data")
        extra = ["model.weights=null", "data.image_size=32", "data.num_workers=0"] if "transfer" in option else []
        return [f"data.root={tmp_path / 'data'}", "data.download=false", *extra]
    return []


def test_groups_found_in_conf_include_the_contract():
    assert {"data", "model", "loss", "optimizer", "scheduler", "experiment"} <= set(GROUPS)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_trains(group, option, tmp_path, monkeypatch):
    overrides = [f"{group}={option}", *needs(group, option, tmp_path, monkeypatch), "trainer.epochs=2",
                 "trainer.progress=false", "trainer.device=cpu"]
    metrics = train(compose_config(overrides), tmp_path / "run")
    assert math.isfinite(metrics["test/loss"]) and 0.0 <= metrics["test/acc"] <= 1.0
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize("group,option", [("loss", o) for o in options("loss")] +
                         [("optimizer", o) for o in options("optimizer")])
def test_every_loss_and_optimizer_learns_the_default_task(group, option, tmp_path):
    # 5 epochs of the default run (digits, small_cnn); chance is 0.1
    metrics = train(compose_config([f"{group}={option}", "trainer.epochs=5", "trainer.progress=false"]), tmp_path)
    assert metrics["test/acc"] > 0.6, f"{group}={option} reached only {metrics['test/acc']:.3f}"
