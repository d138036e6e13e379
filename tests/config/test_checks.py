"""The composed config: defaults, values flowing from data to model and loss, the checks before any work, and the
instantiate wrapper that turns a target's error into one sentence naming the key."""
import re

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_config, run
from trainer.config import build, override_key, validate
from trainer.errors import UserError


def test_default_config_is_digits_small_cnn_ce_adam():
    cfg = compose_config()
    choices = (cfg.data.source._target_, cfg.model._target_, cfg.loss.criterion._target_, cfg.optimizer._target_)
    assert choices == ("trainer.data.digits", "trainer.models.SmallCNN", "torch.nn.CrossEntropyLoss", "torch.optim.Adam")
    assert cfg.scheduler.build is None


def test_shapes_and_class_counts_flow_from_data_to_model_and_loss():
    cfg = compose_config(["data=synthetic", "data.channels=1", "data.image_size=12", "data.num_classes=4"])
    assert list(cfg.model.in_shape) == [1, 12, 12]
    assert cfg.model.num_classes == 4 and cfg.loss.num_classes == 4


def test_override_key_strips_the_add_and_delete_prefixes():
    assert [override_key(o) for o in ("+trainer.epochs=3", "~model.hidden", "loss=ce")] == [
        "trainer.epochs", "model.hidden", "loss"]


@pytest.mark.parametrize("overrides,says", [
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1 is invalid"),
    (["trainer.epochs=0"], "trainer.epochs=0 is invalid"),
    (["data.batch_size=0"], "data.batch_size=0 is invalid"),
    (["data.num_workers=-1"], "data.num_workers=-1 is invalid"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0 is invalid"),
    (["seed=abc"], "seed=abc is invalid"),
    (["mode=eval"], "mode=eval needs a checkpoint: add ckpt_path="),
    (["mode=eval", "ckpt_path=/nowhere/best.pt"], "ckpt_path=/nowhere/best.pt does not exist"),
    (["mode=fit"], "mode=fit is not known: use one of mode=train, mode=eval, mode=lr_find"),
    (["optimizer.lr=fast"], "optimizer.lr=fast is invalid: the learning rate must be a number > 0, auto or tune"),
    (["lr_find.steps=-5"], "lr_find.steps=-5 is invalid"),
    (["lr_find.min_lr=0"], "lr_find.min_lr=0 is invalid"),
    (["lr_find.min_lr=1", "lr_find.max_lr=0.5"], "lr_find.max_lr=0.5 is invalid: the range test ends at a rate above "
                                                 "lr_find.min_lr=1"),
    (["trainer.gradient_clip_val=0"], "trainer.gradient_clip_val=0 is invalid"),
    (["trainer.gradient_clip_val=-1.5"], "trainer.gradient_clip_val=-1.5 is invalid"),
    (["+optimizer.momentum_typo=1"], "optimizer torch.optim.Adam rejected its config"),
    (["model=mlp", "model.activation=gelu"], "model.activation=gelu is not known"),
    (["trainer.device=tpu"], "trainer.device=tpu is not a device name"),
    (["trainer.precision=fp8"], "trainer.precision=fp8 is not known"),
    (["scheduler=plateau", "scheduler.monitor=loss/test"], "scheduler.monitor=loss/test is not known"),
])
def test_bad_input_is_one_sentence_naming_the_key_and_nothing_is_written(tmp_path, overrides, says):
    with pytest.raises(UserError, match=re.escape(says)) as error:
        run(["trainer.progress=false", *overrides], tmp_path)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "checkpoints").exists()


def refuse(value):
    raise UserError(f"value={value} is wrong: use another")


def crash(value):
    raise ValueError("a bug, not a user mistake")


def test_a_user_error_raised_by_a_target_reaches_the_caller_as_itself():
    node = OmegaConf.create({"_target_": "tests.config.test_checks.refuse", "value": 3})
    with pytest.raises(UserError, match="^value=3 is wrong: use another$"):
        build(node, "data")


def test_a_user_error_from_a_nested_target_reaches_the_caller_as_itself():
    node = OmegaConf.create({"_target_": "builtins.list", "_args_": [[{"_target_": "tests.config.test_checks.refuse",
                                                                       "value": 4}]]})
    with pytest.raises(UserError, match="^value=4 is wrong: use another$"):
        build(node, "model")


def test_other_errors_of_a_target_name_the_config_key_and_the_target():
    with pytest.raises(UserError, match=r"^loss could not be built from tests.config.test_checks.crash: a bug"):
        build(OmegaConf.create({"_target_": "tests.config.test_checks.crash", "value": 3}), "loss")


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_folder_given_as_ckpt_path_is_named_a_folder_with_the_checkpoints_in_it(tmp_path, mode):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    for name in ("best.pt", "last.pt"):
        (run_dir / "checkpoints" / name).write_bytes(b"")
    with pytest.raises(UserError, match=rf"^ckpt_path={run_dir} is a folder, not a file; it holds checkpoints/best.pt "
                                        r"and checkpoints/last.pt: point ckpt_path at a .pt file such as "
                                        r"RUN_DIR/checkpoints/best.pt$"):
        run([f"mode={mode}", f"ckpt_path={run_dir}", "trainer.progress=false"], tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in run_dir.rglob("*")) == ["best.pt", "checkpoints", "last.pt"]


@pytest.mark.parametrize("override,says", [
    ("trainer.early_stopping=3", "trainer.early_stopping holds settings (trainer.early_stopping.min_delta, "
                                 "trainer.early_stopping.patience) and was set to 3: set one of its keys instead"),
    ("~model", "model holds settings (model.activation, model.arch, model.backbone_lr_mult, ...) and was removed: "
               "set one of its keys instead, e.g. model.activation=VALUE, or choose an option with model=OPTION"),
    ("trainer=null", "trainer holds settings (trainer.channels_last, trainer.compile, trainer.device, ...) and was "
                     "set to null"),
    ("data.source=foo", "data.source holds settings"),
    ("loss.criterion=torch.nn.MSELoss", "loss.criterion holds settings"),
])
def test_a_node_of_settings_replaced_by_a_value_or_removed_is_one_sentence(override, says):
    with pytest.raises(UserError) as error:
        validate(compose_config([override]), modes=("train",))
    assert str(error.value).startswith(says)
