import pytest
from hydra import compose, initialize_config_dir

from trainer.config import config_dir

CONF = config_dir()
# Shrinks any run to a second or two on a CPU: one epoch, no progress bars.
FAST = ["trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu"]


def compose_config(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def options(group):
    """Every option of a config group, read from conf/ so a new YAML file is tested the day it is added."""
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


@pytest.fixture
def cfg_factory():
    return lambda *overrides: compose_config([*FAST, *overrides])
