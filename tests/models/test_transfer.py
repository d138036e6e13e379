"""The transfer builder: head replacement, weights from the torch cache / a file / offline, freezing invariants,
the feature cache and unfreezing. All on random-initialised networks and tiny generated images."""
from types import SimpleNamespace
from urllib.error import URLError

import pytest
import torch
from torch import nn
from torchvision.models import get_model, get_model_weights

from tests.conftest import FAST, compose_config, options, run
from trainer.data import TensorLoader
from trainer.errors import UserError
from trainer.losses import Objective
from trainer.metrics.running import RunningMetrics
from trainer.models.feature_cache import uses_feature_cache
from trainer.models.transfer import TransferModel
from trainer.models.weights import cached_weights_file
from trainer.optim import Schedule, build_optimizer, build_schedule
from trainer.run import checkpoint
from trainer.run.assemble import assemble
from trainer.run.loop import train_one_epoch

TINY = ["data=synthetic", "data.image_size=32", "data.source.num_samples=40", "model.weights=null"]
SMALL = ["data=synthetic", "data.image_size=16", "data.source.num_samples=24", "model.weights=null"]  # ResNet only


def resnet18(num_classes=3, **settings):
    return TransferModel(arch="resnet18", in_shape=[3, 16, 16], num_classes=num_classes, weights=None, **settings)


def backbone_tensors(model):
    return {name: t.detach().clone() for name, t in model.backbone.state_dict().items()}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty TORCH_HOME, and a download that fails at once as it does without network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_network(url, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch_home"


@pytest.fixture
def resnet18_state():
    torch.manual_seed(123)
    return get_model("resnet18", weights=None).state_dict()


# --- head and architectures -----------------------------------------------------------------------------------


def test_resnet18_fc_becomes_identity_and_the_head_reads_its_512_features():
    model = resnet18(num_classes=7)
    assert isinstance(model.backbone.fc, nn.Identity)
    assert (model.head.in_features, model.head.out_features) == (512, 7)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 7)


def test_any_torchvision_arch_gets_its_last_linear_replaced():
    model = TransferModel(arch="mobilenet_v3_small", in_shape=[3, 32, 32], num_classes=4, weights=None)
    assert isinstance(model.backbone.classifier[3], nn.Identity)
    assert (model.head.in_features, model.head.out_features) == (1024, 4)


@pytest.mark.parametrize("arch, message", [("resnet_19", "not a torchvision classification model"),
                                           ("squeezenet1_1", "no Linear output layer")])
def test_unusable_arch_is_a_user_error(arch, message):
    with pytest.raises(UserError, match=message):
        TransferModel(arch=arch, in_shape=[3, 32, 32], num_classes=4, weights=None)


def test_grayscale_is_repeated_to_three_channels_and_normalised_like_the_weights():
    model = resnet18().eval()
    gray = torch.rand(2, 1, 16, 16)
    assert torch.equal(model(gray), model(gray.repeat(1, 3, 1, 1)))
    preset = get_model_weights("resnet18").DEFAULT.transforms()
    assert model.mean.flatten().tolist() == pytest.approx(preset.mean)
    assert model.std.flatten().tolist() == pytest.approx(preset.std)


def test_two_channel_images_are_a_user_error_naming_data_channels():
    with pytest.raises(UserError, match="data.channels=3"):
        TransferModel(arch="resnet18", in_shape=[2, 32, 32], num_classes=3, weights=None)


# --- weights ----------------------------------------------------------------------------------------------------


def test_default_weights_load_from_the_torch_home_cache(offline, resnet18_state):
    weights = get_model_weights("resnet18").DEFAULT
    path = offline / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[1]  # the file name torchvision expects
    assert cached_weights_file(weights) == path
    path.parent.mkdir(parents=True)
    torch.save(resnet18_state, path)
    model = TransferModel(arch="resnet18", in_shape=[3, 32, 32], num_classes=5, weights="DEFAULT")
    assert torch.equal(model.backbone.conv1.weight, resnet18_state["conv1.weight"])
    assert torch.equal(model.backbone.layer4[1].bn2.running_mean, resnet18_state["layer4.1.bn2.running_mean"])
    assert model.head.out_features == 5


def test_weights_load_from_a_state_dict_file_of_any_class_count(tmp_path, resnet18_state):
    resnet18_state["fc.weight"], resnet18_state["fc.bias"] = torch.zeros(7, 512), torch.zeros(7)  # a 7-class head
    path = tmp_path / "mine.pth"
    torch.save(resnet18_state, path)
    model = TransferModel(arch="resnet18", in_shape=[3, 32, 32], num_classes=3, weights=str(path))
    assert torch.equal(model.backbone.layer1[0].conv1.weight, resnet18_state["layer1.0.conv1.weight"])


def test_eval_and_predict_of_a_trained_transfer_model_read_no_weights_file_and_download_nothing(
        offline, tmp_path, resnet18_state):
    """The checkpoint holds every weight: the file the run started from may be gone (moved, or another machine)."""
    torch.save(resnet18_state, tmp_path / "start.pt")
    common = ["model=resnet18_transfer", *SMALL[:-1], "trainer.progress=false", "trainer.device=cpu"]
    trained = run([*common, f"model.weights={tmp_path / 'start.pt'}", "trainer.epochs=1"], tmp_path / "run")
    (tmp_path / "start.pt").unlink()
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    evaluated = run(["mode=eval", f"ckpt_path={best}", "trainer.progress=false", "trainer.device=cpu"],
                    tmp_path / "eval")
    assert evaluated["test/acc"] == trained["test/acc"] and evaluated["test/loss"] == trained["test/loss"]


def test_a_state_dict_of_another_network_is_a_user_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(UserError, match="does not fit model.arch=resnet18"):
        TransferModel(arch="resnet18", in_shape=[3, 32, 32], num_classes=3, weights=str(path))


def test_offline_without_cached_weights_names_the_file_and_the_alternatives(offline):
    expected = offline / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(UserError) as error:
        TransferModel(arch="resnet18", in_shape=[3, 32, 32], num_classes=3, weights="DEFAULT")
    message = str(error.value)
    assert str(expected) in message and "model.weights=null" in message and "/path/to/state_dict" in message
    assert "\n" not in message


def test_unknown_weights_name_lists_the_known_ones():
    with pytest.raises(UserError, match="IMAGENET1K_V1, DEFAULT"):
        TransferModel(arch="resnet18", in_shape=[3, 32, 32], num_classes=3, weights="IMAGENET22K")


# --- frozen backbone --------------------------------------------------------------------------------------------


def run_epoch(model, seed=0):
    torch.manual_seed(seed)
    x, y = torch.rand(12, 3, 16, 16), torch.arange(12) % 3
    loader = TensorLoader(torch.utils.data.TensorDataset(x, y), batch_size=4, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
    optimizer = build_optimizer(compose_config(["optimizer=sgd"]).optimizer, model)
    objective = Objective(nn.CrossEntropyLoss(), "identity", "index", 3)
    train_one_epoch(model, loader, objective=objective, optimizer=optimizer, schedule=Schedule(None, "epoch", None),
                    metrics=RunningMetrics(torch.device("cpu")))
    return optimizer


def test_an_epoch_leaves_every_frozen_backbone_tensor_bit_identical_and_trains_the_head():
    model = resnet18()
    before, head_before = backbone_tensors(model), model.head.weight.detach().clone()
    optimizer = run_epoch(model)
    after = backbone_tensors(model)
    assert before.keys() == after.keys() and any("running_mean" in key for key in before)
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not torch.equal(head_before, model.head.weight)
    # the optimizer only ever saw the head
    assert [p for group in optimizer.param_groups for p in group["params"]] == list(model.head.parameters())


def test_frozen_batchnorm_stays_in_eval_mode_across_train_calls():
    model = resnet18().train()
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and model.head.training


def test_an_unfrozen_backbone_does_move_its_batchnorm_statistics():
    model = resnet18(freeze_backbone=False)
    before = backbone_tensors(model)
    run_epoch(model)
    assert not torch.equal(before["bn1.running_mean"], model.backbone.bn1.running_mean)


# --- one short run per transfer preset --------------------------------------------------------------------------


@pytest.mark.parametrize("model_option", [o for o in options("model") if o.endswith("_transfer")])
def test_each_transfer_preset_gets_a_head_of_the_class_count_on_its_backbones_features(model_option, cfg_factory):
    parts = assemble(cfg_factory(f"model={model_option}", *TINY, "data.num_classes=4"))
    features = {"resnet18": 512, "vgg16": 4096}[parts.cfg.model.arch]
    assert (parts.model.head.in_features, parts.model.head.out_features) == (features, 4)
    assert parts.net is parts.model.head and parts.loaders.train.tensors[0].shape[1] == features  # cached features
    # test_options.py trains each preset to well above chance


def test_images_too_small_for_vgg16_are_a_user_error_before_training():
    with pytest.raises(UserError, match="vgg16 cannot take images of data.shape=\\[1, 8, 8\\]"):
        # digits: five 2x2 poolings need >= 32 px
        TransferModel(arch="vgg16", in_shape=[1, 8, 8], num_classes=10, weights=None)


# --- feature cache ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting, frozen, augment, unfreeze, expected", [
    ("auto", True, False, None, True),
    ("auto", False, False, None, False),
    ("auto", True, True, None, False),
    ("auto", True, False, 3, False),
    (False, True, False, None, False),
    (True, True, False, None, True),
])
def test_auto_caches_features_only_when_the_backbone_output_cannot_change(setting, frozen, augment, unfreeze,
                                                                         expected):
    model = SimpleNamespace(cache_features=setting, frozen=frozen, unfreeze_at_epoch=unfreeze)
    assert uses_feature_cache(model, augment) is expected


def test_forcing_the_cache_with_augmentation_is_a_user_error():
    model = SimpleNamespace(cache_features=True, frozen=True, unfreeze_at_epoch=None)
    with pytest.raises(UserError, match="model.cache_features=auto"):
        uses_feature_cache(model, augment=True)


def test_cached_features_train_the_head_to_the_same_result_as_the_full_network(tmp_path):
    runs = {}
    for setting in ("true", "false"):
        metrics = run([*FAST, "model=resnet18_transfer", *SMALL, "trainer.epochs=2", f"model.cache_features={setting}"],
                      tmp_path / setting)
        runs[setting] = (metrics, checkpoint.load(tmp_path / setting / "checkpoints/last.pt"))
    (cached, cached_ckpt), (full, full_ckpt) = runs["true"], runs["false"]
    for a, b in zip(cached["history"], full["history"]):
        assert a["loss/train"] == pytest.approx(b["loss/train"], rel=1e-5)
        assert a["loss/val"] == pytest.approx(b["loss/val"], rel=1e-5) and a["acc/val"] == b["acc/val"]
    assert cached["test/loss"] == pytest.approx(full["test/loss"], rel=1e-5)
    assert torch.allclose(cached_ckpt["model"]["head.weight"], full_ckpt["model"]["head.weight"], atol=1e-6)
    # the checkpoint holds the whole model, so evaluating it on images gives the run's test result
    evaluated = run([*FAST, "mode=eval", f"ckpt_path={tmp_path / 'true/checkpoints/best.pt'}"], tmp_path / "eval")
    assert evaluated["test/loss"] == pytest.approx(cached["test/loss"], rel=1e-5)


def test_the_cache_holds_one_feature_vector_per_sample_and_trains_only_the_head(cfg_factory):
    parts = assemble(cfg_factory("model=resnet18_transfer", *SMALL))
    model, splits, features = parts.model, parts.splits, parts.loaders
    assert parts.net is model.head
    assert features.train.tensors[0].shape == (len(splits.train), 512) and len(splits.train) > 0
    assert torch.equal(features.val.tensors[1], splits.val.tensors[1])
    with torch.no_grad():
        assert torch.allclose(model.eval().features(splits.val.tensors[0]), features.val.tensors[0], atol=1e-5)


# --- fine-tuning ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_unfreezing_adds_the_backbone_at_a_scaled_rate_that_follows_the_schedule(scheduler):
    model = resnet18(unfreeze_at_epoch=2, backbone_lr_mult=0.1)
    cfg = compose_config([f"scheduler={scheduler}", "optimizer=sgd", "trainer.epochs=3"])
    optimizer = build_optimizer(cfg.optimizer, model)
    schedule = build_schedule(cfg.scheduler, optimizer, steps_per_epoch=4, epochs=3)
    start_epoch = model.epoch_hook(optimizer, schedule, epochs=3)
    start_epoch(1)
    assert len(optimizer.param_groups) == 1 and not any(p.requires_grad for p in model.backbone.parameters())
    for _ in range(4):
        optimizer.step()
        schedule.after_batch()
    schedule.after_epoch({"loss/val": 1.0, "acc/val": 0.5})
    start_epoch(2)
    head, backbone = optimizer.param_groups
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert model.train().backbone.bn1.training  # unfrozen BatchNorm trains again
    for epoch in range(2):
        for _ in range(4):
            optimizer.step()
            schedule.after_batch()
            assert backbone["lr"] == pytest.approx(0.1 * head["lr"])
        schedule.after_epoch({"loss/val": 1.0, "acc/val": 0.5})  # plateau: no improvement, so it cuts both
        assert backbone["lr"] == pytest.approx(0.1 * head["lr"])


def test_a_run_with_unfreeze_at_epoch_trains_the_backbone_from_that_epoch(cfg_factory, tmp_path):
    cfg = cfg_factory("model=resnet18_transfer", *SMALL, "trainer.epochs=2", "model.unfreeze_at_epoch=2",
                      "optimizer.lr=0.01")
    torch.manual_seed(cfg.seed)  # the run's initialisation
    initial = TransferModel(arch="resnet18", in_shape=[3, 16, 16], num_classes=10, weights=None).backbone.conv1.weight
    run([*FAST, "model=resnet18_transfer", *SMALL, "trainer.epochs=2", "model.unfreeze_at_epoch=2",
         "optimizer.lr=0.01"], tmp_path)
    last = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert [group["lr"] for group in last["optimizer"]["param_groups"]] == pytest.approx([0.01, 0.001])
    assert not torch.equal(last["model"]["backbone.conv1.weight"], initial)


@pytest.mark.parametrize("overrides, message", [
    (["model.unfreeze_at_epoch=5"], "after the last epoch"),
    (["model.unfreeze_at_epoch=2", "optimizer=lbfgs"], "LBFGS"),
    (["model.unfreeze_at_epoch=1"], "use an epoch >= 2"),
    (["model.unfreeze_at_epoch=2", "model.freeze_backbone=false"], "needs model.freeze_backbone=true"),
    (["model.cache_features=maybe"], "auto, true or false"),
])
def test_bad_fine_tuning_settings_stop_the_run_before_training(overrides, message, tmp_path):
    with pytest.raises(UserError, match=message):
        run([*FAST, "model=resnet18_transfer", *SMALL, "trainer.epochs=2", *overrides], tmp_path)
    assert not (tmp_path / "checkpoints").exists()
