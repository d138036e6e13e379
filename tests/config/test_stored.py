"""Configs read from files are data: the allow-list a recorded override (a sweep's record of its command) is held to.
The whole path, from `train resume_sweep=DIR` to nothing having run, is in tests/sweep/test_resume.py."""
import pytest

from trainer.config import check_recorded_override, declared_groups, declared_keys
from trainer.config.stored import recorded_override_fault
from trainer.errors import UserError


@pytest.mark.parametrize("override,fault", [
    # a dict value (Hydra's override grammar builds a config node from it): a target at any depth
    ("++loss.criterion={_target_:torch.load,f:'evil.pkl',weights_only:false}", "holds a config node as its value"),
    ("model.hidden=[8,{_target_:os.system,command:'touch x'}]", "holds a config node as its value"),
    ("data.mean=[[0.5],{a:{b:{_target_:os.system}}}]", "holds a config node as its value"),
    ("loss.criterion={label_smoothing:0.1}", "holds a config node as its value"),  # no target, still a node
    # a group option outside conf/
    ("loss=../../../../some/where/evil_loss", "chooses ../../../../some/where/evil_loss for loss, which is not an "
                                              "option"),
    ("loss=ce,../evil", "chooses ../evil for loss"),
    ("model=choice(mlp,/tmp/evil)", "chooses /tmp/evil for model"),
    ("loss=[ce]", "chooses ['ce'] for loss"),
    ("loss@model=ce", "moves a config node to another place (@model)"),
    # interpolations: a resolver could act
    ("data.root=${oc.env:HOME}", "holds an interpolation"),
    ("data.root='${unique_dir:/tmp/made}'", "holds an interpolation"),
    ("data.mean=[0.5,'${oc.decode:1}']", "holds an interpolation"),
    ("seed=0,${oc.env:SEED}", "holds an interpolation"),
    # Hydra's own settings: its callbacks, launcher, logging
    ("hydra.callbacks.evil._target_=os.system", "changes Hydra's own settings"),
    ("++hydra.callbacks={}", "changes Hydra's own settings"),
    ("~hydra.callbacks.summary", "changes Hydra's own settings"),
    ("hydra.job.env_set.LD_PRELOAD=/tmp/evil.so", "changes Hydra's own settings"),
    ("+data.hydra.callbacks.x=1", "changes Hydra's own settings"),
    # instantiate keys, and keys conf/ does not declare (a + or ++ adds them)
    ("data.source._target_=os.system", "names an instantiate key"),
    ("+loss.criterion._args_=[1]", "names an instantiate key"),
    ("++model._partial_=true", "names an instantiate key"),
    ("+evil=1", "sets evil, which losslab's conf/ does not declare"),
    ("++loss.criterion.weight=null", "sets loss.criterion.weight, which losslab's conf/ does not declare"),
    ("~data.nothing_here", "deletes data.nothing_here, which losslab's conf/ does not declare"),
    ("data.root=glob(*)", "holds a Glob, not a plain value"),
    ("not an override", "is not an override Hydra can read"),
])
def test_a_recorded_override_outside_the_allow_list_is_refused_naming_it(override, fault):
    assert fault in recorded_override_fault(override)
    with pytest.raises(UserError) as refused:
        check_recorded_override(override, source="DIR/multirun.yaml")
    message = str(refused.value)
    assert message.startswith(f"DIR/multirun.yaml records the override {override}, which ")
    assert message.endswith("a sweep's record is data, never code, so it is refused (give that override on the "
                            "command line if you trust it)") and "\n" not in message


@pytest.mark.parametrize("override", [
    "loss=ce,nll,bce,mse", "seed=range(5)", "seed=0,1,2", "optimizer=adam,sgd", "model.hidden=[]",
    "model.hidden=[8,16]", "model.hidden=[[8],[16,8]]", "data.mean=[0.49,0.48,0.45]", "++trainer.epochs=3",
    "+model.dropout=0.1", "trainer.gradient_clip_val=null", "data.root=/data/my images", "experiment=cifar10_seed_cnn",
    "hparams_search=optuna", "experiment=null", "loss=glob(*,exclude=huber)", "optimizer.lr=interval(0.0001,0.1)",
    "optimizer.lr=tag(log,interval(0.0001,0.1))", "~data.mean", "trainer.precision=bf16", "data.source.noise=0.5",
])
def test_what_a_users_own_sweep_records_is_inside_the_allow_list(override):
    assert recorded_override_fault(override) is None


def test_the_allow_list_is_read_from_conf():
    assert {"ce", "nll", "focal"} <= declared_groups()["loss"] and "digits" in declared_groups()["data"]
    keys = declared_keys()
    assert {"trainer.epochs", "model.hidden", "data.source.num_samples", "sweep.target", "loss.criterion.beta",
            "lr_find.min_lr"} <= keys
    assert not any(key.startswith("hydra") or key == "defaults" for key in keys)


def test_a_quoted_value_is_plain_and_an_interpolation_inside_quotes_is_not():
    assert recorded_override_fault("data.root='/x/고양이=1','/x/b'") is None
    assert recorded_override_fault("loss='ce'") is None
    assert "interpolation" in recorded_override_fault("data.root='${oc.env:HOME}'")
    assert "not an option" in recorded_override_fault("loss='../../x/evil'")
