import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from trainer.config import build
from trainer.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def refuse(value):
    raise UserError(f"value={value} is wrong: use another")


def crash(value):
    raise ValueError("a bug, not a user mistake")


def test_a_user_error_raised_by_a_target_reaches_the_caller_as_itself():
    node = OmegaConf.create({"_target_": "tests.test_errors.refuse", "value": 3})
    with pytest.raises(UserError, match="^value=3 is wrong: use another$"):
        build(node, "data")


def test_a_user_error_from_a_nested_target_reaches_the_caller_as_itself():
    node = OmegaConf.create({"_target_": "builtins.list", "_args_": [[{"_target_": "tests.test_errors.refuse",
                                                                       "value": 4}]]})
    with pytest.raises(UserError, match="^value=4 is wrong: use another$"):
        build(node, "model")


def test_other_errors_of_a_target_name_the_config_key_and_the_target():
    with pytest.raises(UserError, match=r"^loss could not be built from tests.test_errors.crash: a bug"):
        build(OmegaConf.create({"_target_": "tests.test_errors.crash", "value": 3}), "loss")


def test_the_cli_prints_a_data_error_from_a_target_as_one_sentence(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "trainer", "data=mnist", f"data.root={tmp_path}", "data.download=false",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == (f"error: data.root={tmp_path} holds no MNIST and data.download=false: "
                                  "set data.download=true or point data.root at a folder that holds it")
