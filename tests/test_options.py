"""Every option of every config group is composed, trained and learns: a new YAML file is tested the day it is added."""
import json
import math
import os

import pytest
import torch
import torchvision

from tests.conftest import CONF, compose_config, options, run
from tests.datafiles import mixed_table, write_cifar10, write_mnist, write_pngs
from trainer.data import labels_of
from trainer.run.assemble import assemble

# hparams_search configures Hydra's sweeper, not the run: tests/test_sweep.py runs every option of it as a sweep
GROUPS = sorted(path.name for path in CONF.iterdir() if path.is_dir() and path.name != "hparams_search")
# Each option trains on data it can learn in a few seconds, and must end well above chance (the default: digits,
# 5 epochs, chance 0.1). (overrides, test accuracy it must reach)
DEFAULT = (["trainer.epochs=5"], 0.6)
FEW_SHOT = ["trainer.epochs=8", "data.batch_size=16"]  # tiny dataset files: more, smaller steps
REGRESSION = ["data=synthetic_regression", "model=mlp", "data.source.num_samples=300", "trainer.epochs=10"]


def needs(group, option, tmp_path, monkeypatch):
    """The overrides (and files) an option needs to run offline on tiny data it can learn: a dataset file in
    data.root, random instead of downloaded weights, images large enough for the network; and the accuracy that
    shows it learned."""
    if option.startswith("cifar10"):
        # our tiny files are not the real ones: check that they exist, not their md5
        monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
        write_cifar10(tmp_path / "data", per_batch=40)
    files = {"data.root": str(tmp_path / "data"), "data.download": "false"}
    cases = {
        ("data", "iris"): (["model=mlp", *FEW_SHOT, "optimizer.lr=0.01"], 0.8),  # chance 1/3
        ("data", "synthetic"): (["data.source.num_samples=300", "trainer.epochs=5"], 0.6),
        ("data", "mnist"): ([*FEW_SHOT], 0.5),
        ("data", "fashion_mnist"): ([*FEW_SHOT], 0.5),
        ("data", "cifar10"): ([*FEW_SHOT], 0.5),
        ("data", "image_folder"): (["data.image_size=16", "trainer.epochs=5"], 0.9),  # chance 1/3
        # the biggest of three classes is half the rows
        ("data", "csv"): (["model=mlp", "data.target=label", "data.drop=[price]", "data.id_column=id",
                           "data.split_column=split", "trainer.epochs=5", "optimizer.lr=0.01"], 0.7),
        # random weights: the frozen features of a random network are all there is to learn from
        ("model", "resnet18_transfer"): (["model.weights=null", "data=synthetic", "data.source.num_samples=200",
                                          "data.num_classes=4", *FEW_SHOT[1:], "trainer.epochs=5",
                                          "optimizer.lr=0.01"], 0.6),  # chance 1/4
        ("model", "vgg16_transfer"): (["model.weights=null", "data=synthetic", "data.source.num_samples=120",
                                       "data.num_classes=2", "data.source.noise=0.3", *FEW_SHOT[1:],
                                       "trainer.epochs=2", "optimizer.lr=0.01"], 0.9),  # chance 1/2
        ("experiment", "cifar10_seed_cnn"): (["trainer.epochs=6", "optimizer.lr=0.01"], 0.4),
        # regression: the score is the test R^2 (0: predicting the mean)
        ("data", "diabetes"): (["model=mlp", "loss=mse", "trainer.epochs=20"], 0.3),
        ("data", "synthetic_regression"): ([*REGRESSION[1:], "loss=mse"], 0.7),
        ("loss", "huber"): (REGRESSION, 0.7),
        ("experiment", "cifar10_resnet18_transfer"): (["model.weights=null", "data.image_size=32",
                                                       "data.num_workers=0", *FEW_SHOT, "optimizer.lr=0.01"], 0.5),
    }
    overrides, learned = cases.get((group, option), DEFAULT)
    if (group, option) not in cases and group in ("loss", "optimizer", "scheduler"):
        overrides = [*overrides, "model=mlp"]  # the option is the point: the default data on the quickest model
    if group in ("data", "experiment") and option not in ("iris", "synthetic", "digits", "image_folder", "diabetes",
                                                          "synthetic_regression", "csv"):
        overrides = [*overrides, *(f"{key}={value}" for key, value in files.items())]
    if option in ("mnist", "fashion_mnist"):
        write_mnist(tmp_path / "data" / {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[option], n_train=200,
                    n_test=50)
    if option == "csv":
        mixed_table(n=400).to_csv(tmp_path / "table.csv", index=False)
        overrides = [*overrides, f"data.path={tmp_path / 'table.csv'}"]
    if option == "image_folder":
        write_pngs(tmp_path / "images", ["cat", "dog", "owl"], 10)
        overrides = [*overrides, f"data.root={tmp_path / 'images'}"]
    return overrides, learned


def test_groups_found_in_conf_include_the_contract():
    assert {"data", "model", "loss", "optimizer", "scheduler", "experiment"} <= set(GROUPS)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_trains_and_learns(group, option, tmp_path, monkeypatch):
    overrides, learned = needs(group, option, tmp_path, monkeypatch)
    metrics = run([f"{group}={option}", *overrides, "trainer.progress=false", "trainer.device=cpu"], tmp_path / "run")
    assert math.isfinite(metrics["test/loss"]) and (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    score = "test/acc" if "test/acc" in metrics else "test/r2"  # a regression scores R^2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())[score] == metrics[score]
    assert metrics[score] >= learned, f"{group}={option} reached only {score} {metrics[score]:.3f}"
    # whatever the loss, a classifier is also scored on its predicted probabilities; a regression in its units
    scored = ("test/nll", "test/brier", "test/ece") if score == "test/acc" else ("test/rmse", "test/mae")
    assert all(math.isfinite(metrics[key]) for key in scored)


@pytest.mark.parametrize("option", [o for o in options("data") if "task: regression" not in
                                    (CONF / "data" / f"{o}.yaml").read_text()])
def test_every_data_option_takes_label_noise_on_its_training_labels_only(option, tmp_path, monkeypatch):
    overrides, _ = needs("data", option, tmp_path, monkeypatch)
    common = [f"data={option}", *overrides, "trainer.progress=false", "trainer.device=cpu"]
    clean, noisy = (assemble(compose_config([*common, f"data.label_noise={noise}"])).splits for noise in (0, 0.4))
    before, after = labels_of(clean.train), labels_of(noisy.train)
    assert int((after != before).sum()) == round(0.4 * len(before))
    for split in ("val", "test"):
        assert torch.equal(labels_of(getattr(noisy, split)), labels_of(getattr(clean, split)))
