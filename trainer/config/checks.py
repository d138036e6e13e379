"""The checks a composed config must pass before any work starts: every mistake is one sentence naming the key."""
import difflib
from collections.abc import Collection, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from trainer.config.stored import override_key
from trainer.errors import UserError


AUTO_OR_BOOL = ("auto", True, False)  # a setting that losslab may decide (auto) or the user forces


def check_auto_or_bool(value: object, key: str) -> None:
    """A setting of auto, true or false (data.cache, model.cache_features)."""
    if value not in AUTO_OR_BOOL or (value in (0, 1) and not isinstance(value, bool)):
        raise UserError(f"{key}={value} is not known: use auto, true or false")


def _positive(value, key, fix):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{key}={value} is invalid: {fix}")


def _check_lr_find(settings):
    """The range test's settings (mode=lr_find, optimizer.lr=auto), checked in every mode: a typo surfaces at once."""
    _positive(settings.min_lr, "lr_find.min_lr", "the range test starts at a rate > 0, e.g. lr_find.min_lr=1e-7")
    max_lr = settings.max_lr
    if isinstance(max_lr, bool) or not isinstance(max_lr, (int, float)) or max_lr <= settings.min_lr:
        raise UserError(f"lr_find.max_lr={max_lr} is invalid: the range test ends at a rate above "
                        f"lr_find.min_lr={settings.min_lr}, e.g. lr_find.max_lr=10")
    if isinstance(settings.steps, bool) or not isinstance(settings.steps, int) or settings.steps < 10:
        raise UserError(f"lr_find.steps={settings.steps} is invalid: the range test needs a whole number of at least "
                        "10 batches, e.g. lr_find.steps=100")


def _check_lr_tune(settings):
    """optimizer.lr=tune's budget and range, checked in every mode."""
    whole = lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if not whole(settings.trials):
        raise UserError(f"lr_tune.trials={settings.trials} is invalid: the search needs a whole number of trials, at "
                        "least 1, e.g. lr_tune.trials=8")
    if settings.epochs is not None and not whole(settings.epochs):
        raise UserError(f"lr_tune.epochs={settings.epochs} is invalid: use the epochs a trial may train, a whole "
                        "number of at least 1, or null for trainer.epochs")
    _positive(settings.min_lr, "lr_tune.min_lr", "the search starts at a rate > 0, e.g. lr_tune.min_lr=1e-5")
    if isinstance(settings.max_lr, bool) or not isinstance(settings.max_lr, (int, float)) or (
            settings.max_lr <= settings.min_lr):
        raise UserError(f"lr_tune.max_lr={settings.max_lr} is invalid: the search ends at a rate above "
                        f"lr_tune.min_lr={settings.min_lr}, e.g. lr_tune.max_lr=10")
    if settings.start_at_default not in (True, False):
        raise UserError(f"lr_tune.start_at_default={settings.start_at_default} is invalid: use true or false")


def validate(cfg: DictConfig, modes: Collection[str], overrides: Sequence[str] = ()) -> None:
    """Raise a UserError naming the key and the fix for values that would otherwise fail deep inside torch, and for
    keys the command line adds that losslab does not read."""
    check_added_keys(cfg, overrides)
    if cfg.mode not in modes:
        raise UserError(f"mode={cfg.mode} is not known: use one of {', '.join(f'mode={m}' for m in modes)}")
    if cfg.mode == "eval" and not cfg.ckpt_path:
        raise UserError("mode=eval needs a checkpoint: add ckpt_path=RUN_DIR/checkpoints/best.pt")
    if cfg.mode == "eval" and not Path(cfg.ckpt_path).is_file():
        raise UserError(f"ckpt_path={cfg.ckpt_path} does not exist: point it at a .pt file in a run's checkpoints/")
    if cfg.optimizer.lr not in ("auto", "tune"):  # the range test (run/lr_find.py) or the search (run/lr_tune.py)
        _positive(cfg.optimizer.lr, "optimizer.lr",
                  "the learning rate must be a number > 0, auto or tune, e.g. optimizer.lr=0.001")
    _check_lr_find(cfg.lr_find)
    if "lr_tune" in cfg:
        _check_lr_tune(cfg.lr_tune)
    if cfg.trainer.gradient_clip_val is not None:
        _positive(cfg.trainer.gradient_clip_val, "trainer.gradient_clip_val",
                  "clip gradients to a global norm > 0, e.g. trainer.gradient_clip_val=1.0, or null for no clipping")
    if not isinstance(cfg.trainer.epochs, int) or cfg.trainer.epochs < 1:
        raise UserError(f"trainer.epochs={cfg.trainer.epochs} is invalid: train for at least one epoch")
    if not isinstance(cfg.data.batch_size, int) or cfg.data.batch_size < 1:
        raise UserError(f"data.batch_size={cfg.data.batch_size} is invalid: use a whole number >= 1")
    if not isinstance(cfg.data.num_workers, int) or cfg.data.num_workers < 0:
        raise UserError(f"data.num_workers={cfg.data.num_workers} is invalid: use 0 (load in the main process) or more")
    if not isinstance(cfg.trainer.log_every_n_steps, int) or cfg.trainer.log_every_n_steps < 1:
        raise UserError(f"trainer.log_every_n_steps={cfg.trainer.log_every_n_steps} is invalid: use a whole number >= 1")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or not 0 <= cfg.seed < 2**32:
        raise UserError(f"seed={cfg.seed} is invalid: use a whole number from 0 to 4294967295")


def check_added_keys(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """A key added with `+key=value` (or `++`) must be one losslab reads: a keyword of a `_target_` (the target then
    checks it), not a typo such as `+trainer.epoch=1` that would silently train the default 20 epochs."""
    for override in overrides:
        if not override.startswith("+"):
            continue
        key = override_key(override)
        if key.split(".")[0] == "hydra" or passed_to_a_target(cfg, key):
            continue
        known = [k for k in dotted_keys(cfg) if k != key]
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        value = override.split("=", 1)[1] if "=" in override else ""
        fix = f"use {close[0]}={value}" if close else "remove it (`train --cfg job` lists the keys)"
        raise UserError(f"{override} adds {key}, which losslab does not read: {fix}")


def passed_to_a_target(cfg: DictConfig, key: str) -> bool:
    """Whether `key` sits in a config node that is instantiated (it has a _target_): its keys are the target's
    keyword arguments."""
    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        node = OmegaConf.select(cfg, ".".join(parts[:depth]))
        if OmegaConf.is_dict(node) and "_target_" in node:
            return True
    return False


def dotted_keys(node: object, prefix: str = "") -> list[str]:
    if not OmegaConf.is_dict(node):
        return [prefix.rstrip(".")]
    return [k for key in node for k in dotted_keys(node._get_node(key), f"{prefix}{key}.")] + (
        [prefix.rstrip(".")] if prefix else [])


