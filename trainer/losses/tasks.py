"""Which losses fit which task. A loss config says it in its own YAML: `input` (how logits become the criterion's
input) is null for a loss that cannot classify, `regression` (the space it compares targets in) null for one that
cannot regress. A loss that does not fit the data's task is one sentence naming both, before anything is built."""
import yaml
from omegaconf import DictConfig, OmegaConf

from trainer.config import config_dir, option_of
from trainer.errors import UserError
from trainer.losses.class_weights import check_class_weights
from trainer.metrics import BEST_METRICS, CLASSIFICATION, REGRESSION, best_metric


def check_task(cfg: DictConfig) -> None:
    """Before anything is built: the loss fits the data's task (a classification loss on regression data, or a
    regression-only loss on classification data, is one sentence naming both), and label noise is for classes."""
    task = cfg.data.get("task", CLASSIFICATION)
    if task not in (CLASSIFICATION, REGRESSION):
        raise UserError(f"data.task={task} is not known: use data.task=classification or data.task=regression")
    if cfg.loss.get(TASK_KEYS[task]) is None:
        loss, data = option_name("loss", cfg.loss), option_name("data", cfg.data)
        raise UserError(f"loss={loss} does not fit {task} data, and data={data} is a {task} set (data.task={task}): "
                        f"use one of {', '.join(f'loss={name}' for name in losses_for(task))}")
    if task == REGRESSION and best_metric(cfg.data) not in BEST_METRICS[REGRESSION]:
        raise UserError(f"data.best={cfg.data.best} is not a regression metric: use data.best=rmse, data.best=mae "
                        "(lowest is best) or data.best=r2 (highest)")
    if task == CLASSIFICATION and best_metric(cfg.data) not in BEST_METRICS[CLASSIFICATION]:
        raise UserError(f"data.best={cfg.data.best} is not a classification metric: use data.best=acc, "
                        "data.best=balanced_acc or data.best=macro_f1 (highest is best)")
    check_class_weights(cfg, option_name("loss", cfg.loss))
    if task == REGRESSION and cfg.data.get("label_noise", 0):
        raise UserError(f"data.label_noise={cfg.data.label_noise} replaces class labels, and data="
                        f"{option_name('data', cfg.data)} is a regression set: leave data.label_noise=0")


# the key of a loss config that says how it treats each task (null: it does not fit that task)
TASK_KEYS = {CLASSIFICATION: "input", REGRESSION: "regression"}


def losses_for(task: str) -> list[str]:
    """The loss options of conf/loss that fit a task."""
    return [path.stem for path in sorted((config_dir() / "loss").glob("*.yaml"))
            if (yaml.safe_load(path.read_text()) or {}).get(TASK_KEYS[task]) is not None]


def option_name(group: str, node: DictConfig) -> str:
    """The option of a group a config node is, for a message; `(your loss)` for one conf/ does not have."""
    return option_of(group, OmegaConf.to_container(node)) or f"(your {group})"


def check_targets_fit_loss(cfg: DictConfig, lowest_target: float) -> None:
    """A loss in log(1 + y) space (msle) needs targets of 0 or more; `lowest_target`: the training split's lowest."""
    if cfg.loss.get("regression") == "log1p" and lowest_target < 0:
        low = lowest_target
        raise UserError(f"loss={option_name('loss', cfg.loss)} takes log(1 + target), and data="
                        f"{option_name('data', cfg.data)} has training targets down to {low:.3g}: use loss=mse, "
                        "loss=l1 or loss=huber for targets that can be negative")
