"""Every number and switch a user sets is checked for its type, for being finite and for its range, naming the key,
before anything is built: one table (trainer/config/values.py), kept true to conf/."""
import math
import re

import pytest
from omegaconf import OmegaConf

from tests.conftest import REPO, TINY, compose_config, options, run
from trainer.config.values import VALUES, Rule, check_values, shown, whole
from trainer.errors import UserError


@pytest.mark.parametrize("overrides,says", [
    (["trainer.epochs=true"], "trainer.epochs=true is invalid: the number of epochs to train must be a whole number "
                              ">= 1, e.g. trainer.epochs=20"),
    (["data.batch_size=true"], "data.batch_size=true is invalid: the batch size must be a whole number >= 1, e.g. "
                               "data.batch_size=64"),
    (["optimizer.lr=inf"], "optimizer.lr=inf is invalid: the learning rate must be a number > 0, auto or tune, e.g. "
                           "optimizer.lr=0.001"),
    (["optimizer.lr=nan"], "optimizer.lr=nan is invalid: the learning rate must be a number > 0, auto or tune"),
    (["trainer.gradient_clip_val=nan"], "trainer.gradient_clip_val=nan is invalid: the largest global gradient norm "
                                        "must be a number > 0 or null, e.g. trainer.gradient_clip_val=1.0"),
    (["lr_find.min_lr=nan"], "lr_find.min_lr=nan is invalid: the range test's first rate must be a number > 0"),
    (["model.dropout=nan"], "model.dropout=nan is invalid: the dropout probability must be a number in [0, 1), e.g. "
                            "model.dropout=0.1"),
    (["model.dropout=1"], "model.dropout=1 is invalid: the dropout probability must be a number in [0, 1)"),
    (["model.hidden=[0]"], "model.hidden=[0] is invalid: the hidden layers' widths must be a list of whole numbers "
                           ">= 1, e.g. model.hidden=[128]"),
    (["model.hidden=8"], "model.hidden=8 is invalid: the hidden layers' widths must be a list of whole numbers >= 1"),
    (["model=small_cnn", "model.hidden=[8]"], "model.hidden=[8] is invalid: the hidden layer's width must be a whole "
                                              "number >= 1, e.g. model.hidden=128"),
    (["model=small_cnn", "model.kernel_size=0"], "model.kernel_size=0 is invalid"),
    (["data.channels=true"], "data.channels=true is invalid: the number of channels must be a whole number >= 1"),
    (["data.image_size=true"], "data.image_size=true is invalid"),
    (["data.num_classes=2.5"], "data.num_classes=2.5 is invalid"),
    (["data.source.noise=nan"], "data.source.noise=nan is invalid: the noise's standard deviation must be a number "
                                ">= 0"),
    (["data.source.num_samples=true"], "data.source.num_samples=true is invalid"),
    (["data.num_workers=true"], "data.num_workers=true is invalid"),
    (["trainer.log_every_n_steps=true"], "trainer.log_every_n_steps=true is invalid"),
    (["trainer.progress=2"], "trainer.progress=2 is invalid: it must be true or false, e.g. trainer.progress=true"),
    (["seed=true"], "seed=true is invalid: the seed must be a whole number in [0, 4294967295], e.g. seed=0"),
    (["loss.criterion.label_smoothing=nan"], "loss.criterion.label_smoothing=nan is invalid"),
    (["optimizer=sgd", "optimizer.momentum=nan"], "optimizer.momentum=nan is invalid: the momentum must be a number "
                                                  "in [0, 1), e.g. optimizer.momentum=0.9"),
    (["optimizer.betas=[0.9]"], "optimizer.betas=[0.9] is invalid: Adam's betas must be a list of 2 numbers in "
                                "[0, 1), e.g. optimizer.betas=[0.9,0.999]"),
    (["optimizer=lbfgs", "optimizer.history_size=0"], "optimizer.history_size=0 is invalid"),
    (["optimizer=lbfgs", "optimizer.max_iter=0"], "optimizer.max_iter=0 is invalid"),  # it would train nothing
    (["scheduler=step", "scheduler.build.step_size=0"], "scheduler.build.step_size=0 is invalid: the epochs between "
                                                        "two rate cuts must be a whole number >= 1"),
    (["scheduler=step", "scheduler.build.gamma=nan"], "scheduler.build.gamma=nan is invalid"),
    (["scheduler=cosine", "scheduler.build.T_max=0"], "scheduler.build.T_max=0 is invalid"),
    (["scheduler=onecycle", "scheduler.build.pct_start=0"], "scheduler.build.pct_start=0 is invalid: the warm-up's "
                                                            "share of the run must be a number in (0, 1)"),
    (["scheduler=plateau", "scheduler.build.factor=2"], "scheduler.build.factor=2 is invalid"),
    (["scheduler=plateau", "scheduler.build.mode=up"], "scheduler.build.mode=up is invalid: the direction of the "
                                                       "monitored metric must be one of min, max"),
    (["data.label_noise=1"], "data.label_noise=1 is invalid: the fraction of training labels to replace must be a "
                             "number in [0, 1), e.g. data.label_noise=0.4"),
])
def test_a_loose_value_is_one_sentence_naming_its_key_before_anything_is_built(tmp_path, overrides, says):
    with pytest.raises(UserError) as error:
        run([*TINY, "trainer.epochs=1", *overrides], tmp_path / "run")
    assert str(error.value).startswith(says) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_a_key_other_keys_interpolate_is_named_itself():
    # scheduler.build.T_max is ${trainer.epochs}: the key the user set is the one named
    with pytest.raises(UserError, match=r"^trainer.epochs=0 is invalid"):
        check_values(compose_config(["scheduler=cosine", "trainer.epochs=0"]))


@pytest.mark.parametrize("group", ["data", "model", "loss", "optimizer", "scheduler", "experiment"])
def test_every_option_as_conf_declares_it_passes_every_rule(group):
    for option in options(group):
        check_values(compose_config([f"{group}={option}"]))


def test_every_rule_names_a_key_some_config_has():
    absent = object()
    composed = [compose_config([f"{g}={o}"]) for g in ("data", "model", "loss", "optimizer", "scheduler")
                for o in options(g)]
    for section, rules in VALUES.items():
        for key in rules:
            path = f"{section}.{key}".lstrip(".")
            has = any(OmegaConf.select(cfg, path, default=absent) is not absent for cfg in composed)
            assert has or path == "optimizer.eps", path  # Adam's eps is added with +optimizer.eps


def test_a_rule_takes_only_its_type_finite_and_in_range():
    rule = Rule("the rate", 0.1, low=0, open_low=True, also=("auto",))
    assert [rule.accepts(v) for v in (0.1, 1, "auto", 0, -1, math.nan, math.inf, True, "fast", None)] == [
        True, True, True, False, False, False, False, False, False, False]
    widths = whole("the widths", "[8]", low=1, items=0)
    assert [widths.accepts(v) for v in ([], [8, 4], [0], [8.0], 8, [True])] == [True, True, False, False, False,
                                                                               False]
    assert Rule("p", 0.5, low=0, high=1, open_high=True).requirement() == "a number in [0, 1)"
    assert [shown(v) for v in (True, None, [1, 2], 0.5, math.nan)] == ["true", "null", "[1,2]", "0.5", "nan"]


def test_the_readme_example_of_a_mistake_is_what_train_says():
    readme = (REPO / "README.md").read_text()
    said = re.search(r"\$ train optimizer.lr=0\nerror: (.*)\n", readme)[1]
    with pytest.raises(UserError) as error:
        check_values(compose_config(["optimizer.lr=0"]))
    assert str(error.value) == said


def test_a_pretrained_models_settings_are_checked_before_its_weights_are_read(tmp_path):
    with pytest.raises(UserError, match=r"^model.backbone_lr_mult=nan is invalid: the backbone's share of the "
                                        r"learning rate once unfrozen must be a number > 0, e.g. "
                                        r"model.backbone_lr_mult=0.1$"):
        run([*TINY, "model=resnet18_transfer", "model.backbone_lr_mult=nan"], tmp_path / "run")
    with pytest.raises(UserError, match=r"^data.mean=\[nan\] is invalid: give one number for every channel"):
        run([*TINY, "data.mean=[nan]", "data.std=[1]"], tmp_path / "run")
    assert not (tmp_path / "run").exists()
