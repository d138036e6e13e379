"""One assembly of a run: the same config always gives the same run, the data decides the class count, models
bring their own hooks, and a model that does not fit the data fails in one sentence before training."""
import pytest
import torch
from torch import nn

from tests.conftest import TINY, compose_config
from tests.datafiles import write_pngs
from trainer.assemble import assemble
from trainer.data import Splits
from trainer.errors import UserError


def test_the_same_config_assembles_the_same_weights_data_and_runtime():
    cfg = compose_config([*TINY, "trainer.precision=bf16"])
    first, second = assemble(cfg), assemble(cfg)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(first.loaders.test.tensors[0], second.loaders.test.tensors[0])
    assert first.runtime.precision.name == "bf16" and first.runtime.device == torch.device("cpu")
    assert first.net is first.model and first.train_net is first.model  # no feature cache, no DDP here
    assert first.config["data"]["num_classes"] == 4 and first.optimizer.param_groups[0]["lr"] == 0.001


def test_an_evaluation_assembly_has_no_optimizer_and_only_the_test_split():
    parts = assemble(compose_config(TINY), for_training=False)
    assert parts.optimizer is None and parts.schedule is None
    assert parts.loaders.train is None and parts.loaders.val is None and len(parts.loaders.test) > 0


def test_the_data_fills_in_a_null_class_count_on_a_copy_of_the_config(tmp_path):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 4)
    cfg = compose_config(["data=image_folder", f"data.root={tmp_path}", "data.image_size=8", "data.num_workers=0"])
    parts = assemble(cfg)
    assert cfg.data.num_classes is None
    assert parts.cfg.data.num_classes == 3 and parts.cfg.model.num_classes == 3 and parts.config["loss"]["num_classes"] == 3
    assert parts.model(torch.zeros(1, 3, 8, 8)).shape == (1, 3)


def test_a_class_count_that_contradicts_the_folders_is_a_user_error(tmp_path):
    write_pngs(tmp_path, ["cat", "dog"], 4)
    cfg = compose_config(["data=image_folder", f"data.root={tmp_path}", "data.num_classes=5", "data.num_workers=0"])
    with pytest.raises(UserError, match="data.num_classes=5 but the dataset has 2 classes"):
        assemble(cfg)


class Hooked(nn.Module):
    """A model with both hooks, as a user's own model might have them."""
    started = []

    def __init__(self, in_shape, num_classes):
        super().__init__()
        self.head = nn.Linear(int(torch.tensor(in_shape).prod()), num_classes)

    def forward(self, x):
        return self.head(x.flatten(1))

    def training_view(self, splits, *, batch_size, num_workers, augment, device):
        halve = lambda d: torch.utils.data.TensorDataset(*(t[: len(t) // 2] for t in d.tensors))
        return nn.Sequential(nn.Flatten(), self.head), Splits(train=halve(splits.train), val=splits.val,
                                                              test=splits.test)

    def epoch_hook(self, optimizer, schedule, *, epochs):
        return lambda epoch: Hooked.started.append((epoch, epochs))


def test_a_models_own_hooks_decide_what_trains_and_run_at_every_epoch_start(tmp_path):
    from tests.conftest import run

    Hooked.started = []
    overrides = [*TINY, "model._target_=tests.test_assemble.Hooked", "~model.hidden", "~model.activation",
                 "~model.dropout"]
    parts = assemble(compose_config(overrides))
    assert parts.net[1] is parts.model.head and len(parts.loaders.train.tensors[0]) == 70  # 140 training samples / 2
    run([*overrides, "trainer.epochs=2"], tmp_path)
    assert Hooked.started == [(1, 2), (2, 2)]


@pytest.mark.parametrize("overrides,says", [
    (["data.num_classes=5"], "the train split has labels from 0 to 9 but the model's head has 5 outputs: "
                             "set data.num_classes=10"),
    (["data=synthetic", "data.channels=0"], "the model cannot take samples of data.shape=[0, 32, 32]"),
    (["loss.criterion._target_=torch.nn.NoSuchLoss"], "loss could not be built from trainer.losses.Objective"),
])
def test_a_model_or_loss_that_does_not_fit_the_data_is_one_sentence(overrides, says):
    with pytest.raises(UserError) as error:
        assemble(compose_config(["trainer.progress=false", *overrides]))
    assert says in str(error.value) and "\n" not in str(error.value)
