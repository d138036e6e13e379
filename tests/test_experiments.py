"""Every experiment preset composes (`train experiment=NAME`) and sets the values its recipe promises."""
import pytest

from tests.conftest import compose_config, options

# What each preset must set: (config key, value). A new preset needs its entry here.
EXPECTED = {
    "cifar10_seed_cnn": {
        "data.source.dataset._target_": "torchvision.datasets.CIFAR10", "model._target_": "trainer.models.SmallCNN",
        "loss.criterion._target_": "torch.nn.CrossEntropyLoss", "optimizer._target_": "torch.optim.SGD",
        "optimizer.lr": 0.001, "optimizer.momentum": 0.9, "trainer.epochs": 3, "scheduler.build": None,
        "data.shape": [3, 32, 32], "data.batch_size": 4, "model.padding": "auto",
    },
    "cifar10_resnet18_transfer": {
        "data.source.dataset._target_": "torchvision.datasets.CIFAR10",
        "model._target_": "trainer.transfer.TransferModel", "model.arch": "resnet18", "model.weights": "DEFAULT",
        "model.freeze_backbone": True, "model.cache_features": "auto", "model.num_classes": 10,
        "loss.criterion._target_": "torch.nn.CrossEntropyLoss", "data.shape": [3, 224, 224], "data.augment": False,
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
