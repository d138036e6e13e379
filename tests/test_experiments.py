"""Every experiment preset composes (`train experiment=NAME`) and sets the values its recipe promises; the seeds'
preset trains exactly as the PyTorch tutorial loop the seed follows, from torchvision's CIFAR-10 or image files."""
import os

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset
from torchvision import transforms

from tests.conftest import compose_config, options, run
from tests.datafiles import write_cifar10
from trainer.data import epoch_batches, make_loader, split_indices
from trainer.run import checkpoint
from trainer.run.assemble import assemble

# What each preset must set: (config key, value). A new preset needs its entry here.
EXPECTED = {
    "cifar10_seed_cnn": {
        "data.source.dataset._target_": "torchvision.datasets.CIFAR10", "model._target_": "trainer.models.SmallCNN",
        "loss.criterion._target_": "torch.nn.CrossEntropyLoss", "optimizer._target_": "torch.optim.SGD",
        "optimizer.lr": 0.001, "optimizer.momentum": 0.9, "trainer.epochs": 3, "scheduler.build": None,
        "data.shape": [3, None, None], "data.batch_size": 4, "model.padding": "auto", "data.mean": 0.5,
        "data.std": 0.5, "data.source.val_fraction": 0.02,
    },
    "cifar10_resnet18_transfer": {
        "data.source.dataset._target_": "torchvision.datasets.CIFAR10",
        "model._target_": "trainer.models.TransferModel", "model.arch": "resnet18", "model.weights": "DEFAULT",
        "model.freeze_backbone": True, "model.cache_features": "auto", "model.num_classes": 10,
        "loss.criterion._target_": "torch.nn.CrossEntropyLoss", "data.image_size": None, "data.mean": None,
        "data.augment": False,
    },
}


def value(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return list(node) if hasattr(node, "__len__") and not isinstance(node, str) else node


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiment_preset_sets_its_recipe(experiment):
    assert experiment in EXPECTED, f"add the key values of conf/experiment/{experiment}.yaml to EXPECTED"
    cfg = compose_config([f"experiment={experiment}"])
    assert {key: value(cfg, key) for key in EXPECTED[experiment]} == EXPECTED[experiment]


def test_command_line_overrides_beat_the_experiment():
    cfg = compose_config(["experiment=cifar10_seed_cnn", "optimizer.lr=0.01", "trainer.epochs=1"])
    assert (cfg.optimizer.lr, cfg.trainer.epochs, cfg.optimizer.momentum) == (0.01, 1, 0.9)


def test_no_experiment_is_the_default():
    assert compose_config().trainer.epochs == 20 and compose_config().data.source._target_ == "trainer.data.digits"


# --- the seeds' recipe, reproduced ------------------------------------------------------------------------------


def seed_cnn():
    """The seeds' CIFAR-10 network written out, as their loop defines it."""
    return nn.Sequential(nn.Conv2d(3, 64, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 30, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(30 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))


@pytest.fixture
def cifar10_files(tmp_path, monkeypatch):
    # our tiny files are not the real ones: check that they exist, not their md5
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    write_cifar10(tmp_path / "data", per_batch=20)  # 100 training images, 20 test images
    return tmp_path / "data"


def test_the_seed_preset_trains_exactly_as_the_tutorial_loop(cifar10_files, tmp_path):
    overrides = ["experiment=cifar10_seed_cnn", f"data.root={cifar10_files}", "data.download=false",
                 "trainer.progress=false", "trainer.device=cpu"]
    initial = assemble(compose_config(overrides)).model.state_dict()
    run(overrides, tmp_path / "run")
    trained = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")["model"]

    # the tutorial: ToTensor + Normalize((0.5,)*3, (0.5,)*3), batch 4, CrossEntropyLoss, SGD lr 0.001 momentum 0.9,
    # on the images the preset trains on (its val takes 1 in 50 of each class, at least one), in its order
    tutorial = torchvision.datasets.CIFAR10(str(cifar10_files), train=True, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
    net = seed_cnn()
    net.load_state_dict(dict(zip(net.state_dict(), initial.values())))
    optimizer, criterion = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9), nn.CrossEntropyLoss()
    train_indices, val_indices, _ = split_indices(100, 0.02, None, seed=0, labels=torch.tensor(tutorial.targets),
                                                  method="stratified")  # how the preset carves val
    assert len(val_indices) == 10  # one of each class: 2% of 10 images a class is less than one
    n = len(train_indices)
    positions = make_loader(TensorDataset(torch.arange(n), torch.zeros(n)), batch_size=4, shuffle=True, seed=0)
    for epoch in (1, 2, 3):
        for batch, _ in epoch_batches(positions, seed=0, epoch=epoch):
            x, y = zip(*(tutorial[int(train_indices[i])] for i in batch))
            optimizer.zero_grad()
            criterion(net(torch.stack(x)), torch.tensor(y)).backward()
            optimizer.step()
    for ours, theirs in zip(trained.values(), net.state_dict().values()):
        assert torch.allclose(ours, theirs, atol=1e-6)  # ToTensor divides by 255, torchvision's v2 multiplies by 1/255


def test_the_seed_preset_on_cifar10_as_image_files_gets_the_same_images_at_their_own_32_px(cifar10_files, tmp_path):
    for train, folder in ((True, "train"), (False, "test")):
        for i, (image, label) in enumerate(torchvision.datasets.CIFAR10(str(cifar10_files), train=train)):
            (tmp_path / "files" / folder / f"class{label}").mkdir(parents=True, exist_ok=True)
            image.save(tmp_path / "files" / folder / f"class{label}" / f"{i:03d}.png")
    common = ["experiment=cifar10_seed_cnn", "trainer.progress=false", "trainer.device=cpu"]
    files = assemble(compose_config([*common, "data=image_folder", f"data.root={tmp_path / 'files'}"]))
    torchvision_parts = assemble(compose_config([*common, f"data.root={cifar10_files}", "data.download=false"]))
    assert files.cfg.data.image_size == 32 and files.cfg.data.batch_size == 4
    assert (len(files.splits.train), len(files.splits.val), len(files.splits.test)) == (90, 10, 20)
    # the same test images, normalised with the seed's 0.5 and 0.5, in the folders' order (class, then file)
    x, y = torchvision_parts.splits.test.tensors
    order = torch.argsort(y, stable=True)
    assert torch.equal(files.splits.test.tensors[0], x[order]) and torch.equal(files.splits.test.tensors[1], y[order])
    assert files.splits.test.tensors[0].min() >= -1 and files.splits.test.tensors[0].max() <= 1
