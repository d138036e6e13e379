"""One assembly of a run: the same config always gives the same run, the data decides the class count, the image
size and the normalisation statistics, each model sees the inputs it should, models bring their own hooks, and a
model that does not fit the data fails in one sentence before training."""
import pytest
import torch
from torch import nn
from torchvision.models import get_model_weights

from tests.conftest import TINY, compose_config, run
from tests.datafiles import write_pngs
from trainer.data import Splits, epoch_batches
from trainer.errors import UserError
from trainer.metrics.running import RunningMetrics
from trainer.models.transfer import TransferModel
from trainer.run import checkpoint
from trainer.run.assemble import assemble
from trainer.run.evaluation import eval_config
from trainer.run.loop import train_one_epoch


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

    def training_view(self, splits, *, read, augment, device):
        halve = lambda d: torch.utils.data.TensorDataset(*(t[: len(t) // 2] for t in d.tensors))
        return nn.Sequential(nn.Flatten(), self.head), Splits(train=halve(splits.train), val=splits.val,
                                                              test=splits.test)

    def epoch_hook(self, optimizer, schedule, *, epochs):
        return lambda epoch: Hooked.started.append((epoch, epochs))


def test_a_models_own_hooks_decide_what_trains_and_run_at_every_epoch_start(tmp_path):
    from tests.conftest import run

    Hooked.started = []
    overrides = [*TINY, "model._target_=tests.run.test_assemble.Hooked", "~model.hidden", "~model.activation",
                 "~model.dropout"]
    parts = assemble(compose_config(overrides))
    assert parts.net[1] is parts.model.head and len(parts.loaders.train.tensors[0]) == 70  # 140 training samples / 2
    run([*overrides, "trainer.epochs=2"], tmp_path)
    assert Hooked.started == [(1, 2), (2, 2)]


@pytest.mark.parametrize("overrides,says", [
    (["data.num_classes=5"], "the train split has labels from 0 to 9 but the model's head has 5 outputs: "
                             "set data.num_classes=10"),
    (["data=synthetic", "data.channels=0"], "data.channels=0 is invalid: the number of channels must be a whole "
                                            "number >= 1"),
    (["loss.criterion._target_=torch.nn.NoSuchLoss"], "loss could not be built from trainer.losses.Objective"),
])
def test_a_model_or_loss_that_does_not_fit_the_data_is_one_sentence(overrides, says):
    with pytest.raises(UserError) as error:
        assemble(compose_config(["trainer.progress=false", *overrides]))
    assert says in str(error.value) and "\n" not in str(error.value)


# --- what each model sees -----------------------------------------------------------------------------------------


def images_cfg(root, *overrides):
    return compose_config(["data=image_folder", f"data.root={root}", "data.num_workers=0", "trainer.progress=false",
                           "trainer.device=cpu", *overrides])


def channel_view(values):
    return torch.tensor(values).view(1, -1, 1, 1)


def test_a_model_trained_from_scratch_sees_its_inputs_standardised_with_the_training_splits_statistics(tmp_path):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 10)
    raw = assemble(images_cfg(tmp_path, "data.image_size=16", "data.normalize=false")).splits
    parts = assemble(images_cfg(tmp_path, "data.image_size=16"))
    train = raw.train.tensors[0].transpose(0, 1).flatten(1).double()
    assert parts.cfg.data.mean == pytest.approx(train.mean(1).tolist(), rel=1e-9)
    assert parts.cfg.data.std == pytest.approx(train.std(1).tolist(), rel=1e-9)
    assert parts.config["data"]["mean"] == list(parts.cfg.data.mean)  # stored in every checkpoint
    mean, std = channel_view(parts.cfg.data.mean), channel_view(parts.cfg.data.std)
    seen = []
    parts.model.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    train_one_epoch(parts.train_net, epoch_batches(parts.loaders.train, 0, 1), objective=parts.objective,
                    optimizer=parts.optimizer, schedule=parts.schedule, metrics=RunningMetrics(torch.device("cpu")))
    seen = torch.cat(seen)
    assert seen.mean(dim=(0, 2, 3)).abs().max() < 1e-5 and (seen.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    assert torch.allclose(seen.sum(0), ((raw.train.tensors[0] - mean) / std).sum(0), atol=1e-4)  # every sample once
    # val and test with the training split's statistics, not their own
    assert torch.equal(parts.splits.val.tensors[0], (raw.val.tensors[0] - mean) / std)
    assert torch.equal(parts.splits.test.tensors[0], (raw.test.tensors[0] - mean) / std)


def test_a_pretrained_model_sees_its_images_normalised_once_with_its_weights_values(tmp_path, monkeypatch):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 4)
    prepared, prepare = [], TransferModel.prepare
    monkeypatch.setattr(TransferModel, "prepare", lambda self, x: prepared.append((x, prepare(self, x))) or
                        prepared[-1][1])
    parts = assemble(images_cfg(tmp_path, "model=resnet18_transfer", "model.weights=null", "data.image_size=32"))
    raw = assemble(images_cfg(tmp_path, "data.image_size=32", "data.normalize=false")).splits
    assert parts.cfg.data.mean is None and torch.equal(parts.splits.train.tensors[0], raw.train.tensors[0])
    preset = get_model_weights("resnet18").DEFAULT.transforms()
    for split in (raw.train, raw.val, raw.test):  # the feature cache's pass gets each split as decoded, in [0, 1]
        x = split.tensors[0]
        outs = [out for seen, out in prepared if seen.shape == x.shape and torch.equal(seen, x)]
        expected = (x - channel_view(preset.mean)) / channel_view(preset.std)  # ImageNet's, once
        assert outs and all(torch.allclose(out, expected) for out in outs)  # (val and test may hold equal images)


def test_normalising_a_pretrained_models_images_in_the_data_as_well_is_refused(tmp_path):
    write_pngs(tmp_path, ["cat", "dog"], 4)
    with pytest.raises(UserError, match="^data.mean=0.5 and data.std=0.5 would normalise the images a second time: "
                                        "a pretrained model normalises them itself"):
        run(["data=image_folder", f"data.root={tmp_path}", "model=resnet18_transfer", "model.weights=null",
             "data.mean=0.5", "data.std=0.5", "trainer.progress=false"], tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_pretrained_model_gets_the_image_size_of_its_weights_and_one_from_scratch_the_images_own(tmp_path):
    write_pngs(tmp_path, ["cat", "dog"], 3)  # 20x24 to 22x24
    assert TransferModel.input_size({"arch": "inception_v3", "weights": None}) == 299
    transfer = assemble(images_cfg(tmp_path, "model=resnet18_transfer", "model.weights=null"))
    assert transfer.cfg.data.image_size == 224 and list(transfer.cfg.model.in_shape) == [3, 224, 224]
    scratch = assemble(images_cfg(tmp_path))
    # the median shorter side of the training images (20, 20, 21, 21 px by seed 0)
    assert scratch.cfg.data.image_size == 20 and list(scratch.cfg.model.in_shape) == [3, 20, 20]
    assert images_cfg(tmp_path).data.image_size is None  # filled in on the run's copy


def test_an_evaluation_normalises_with_the_statistics_its_checkpoint_was_trained_with(tmp_path, monkeypatch):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 6)
    trained = assemble(images_cfg(tmp_path))
    monkeypatch.setattr("trainer.data.stage.channel_statistics", lambda *a, **k: pytest.fail("statistics read again"))
    evaluated = assemble(eval_config(trained.config, images_cfg(tmp_path), []), for_training=False)
    assert evaluated.cfg.data.mean == trained.cfg.data.mean and evaluated.cfg.data.std == trained.cfg.data.std
    assert evaluated.cfg.data.image_size == trained.cfg.data.image_size
    assert torch.equal(evaluated.splits.test.tensors[0], trained.splits.test.tensors[0])


def test_an_evaluation_on_new_images_uses_the_training_statistics_and_size(tmp_path):
    write_pngs(tmp_path / "old", ["cat", "dog", "owl"], 6, size=16)
    write_pngs(tmp_path / "new", ["cat", "dog", "owl"], 4, size=24)  # other images, another size
    trained = assemble(images_cfg(tmp_path / "old"))
    new_root = f"data.root={tmp_path / 'new'}"
    evaluated = assemble(eval_config(trained.config, images_cfg(tmp_path / "new"), [new_root]), for_training=False)
    assert (evaluated.cfg.data.mean, evaluated.cfg.data.std) == (trained.cfg.data.mean, trained.cfg.data.std)
    assert evaluated.splits.test.tensors[0].shape[-1] == trained.cfg.data.image_size < 24
    assert evaluated.cfg.data.root == str(tmp_path / "new")


def test_a_cached_and_a_streamed_run_train_the_same_weights(tmp_path):
    write_pngs(tmp_path / "images", ["cat", "dog", "owl"], 10)
    weights = {}
    for cache, workers in (("true", 0), ("false", 2)):
        run(["data=image_folder", f"data.root={tmp_path / 'images'}", f"data.cache={cache}",
             f"data.num_workers={workers}", "trainer.epochs=2", "trainer.progress=false", "trainer.device=cpu"],
            tmp_path / cache)
        weights[cache] = checkpoint.load(tmp_path / cache / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(weights["true"][key], weights["false"][key]) for key in weights["true"])


def test_label_noise_outside_zero_to_one_stops_the_run_before_training(tmp_path):
    with pytest.raises(UserError, match="^data.label_noise=1.5 is invalid"):
        run([*TINY, "data.label_noise=1.5"], tmp_path)
    assert not (tmp_path / "checkpoints").exists()
