"""The checks a composed config must pass before any work starts: every mistake is one sentence naming the key."""
from collections.abc import Collection, Sequence

from omegaconf import DictConfig

from trainer.config.keys import check_added_keys
from trainer.config.paths import check_file
from trainer.config.values import check_values
from trainer.errors import UserError


CHECKPOINT_MODES = ("eval", "predict")  # modes that use a trained model: ckpt_path is required
AUTO_OR_BOOL = ("auto", True, False)  # a setting that losslab may decide (auto) or the user forces


def check_auto_or_bool(value: object, key: str) -> None:
    """A setting of auto, true or false (data.cache, model.cache_features)."""
    if value not in AUTO_OR_BOOL or (value in (0, 1) and not isinstance(value, bool)):
        raise UserError(f"{key}={value} is not known: use auto, true or false")


def check_lr_range(settings: DictConfig) -> None:
    """The range test (mode=lr_find, optimizer.lr=auto) ends above where it starts; checked in every mode, so a typo
    surfaces at once."""
    if settings.max_lr <= settings.min_lr:
        raise UserError(f"lr_find.max_lr={settings.max_lr} is invalid: the range test ends at a rate above "
                        f"lr_find.min_lr={settings.min_lr}, e.g. lr_find.max_lr=10")


def _check_early_stopping(settings):
    patience, min_delta = settings.get("patience"), settings.get("min_delta", 0.0)
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise UserError(f"trainer.early_stopping.patience={patience} is invalid: stop after a whole number of epochs "
                        "without improvement, at least 1 (e.g. trainer.early_stopping.patience=3), or null to train "
                        "every epoch")
    if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not 0 <= min_delta < float("inf"):
        raise UserError(f"trainer.early_stopping.min_delta={min_delta} is invalid: use a number >= 0, the improvement "
                        "that counts in the metric's own units (e.g. 0.001)")


def validate(cfg: DictConfig, modes: Collection[str], overrides: Sequence[str] = ()) -> None:
    """Raise a UserError naming the key and the fix for values that would otherwise fail deep inside torch, and for
    keys the command line adds that losslab does not read."""
    check_added_keys(cfg, overrides)
    if cfg.mode not in modes:
        raise UserError(f"mode={cfg.mode} is not known: use one of {', '.join(f'mode={m}' for m in modes)}")
    if cfg.mode in CHECKPOINT_MODES and not cfg.ckpt_path:
        raise UserError(f"mode={cfg.mode} needs a checkpoint: add ckpt_path=RUN_DIR/checkpoints/best.pt")
    if cfg.mode in CHECKPOINT_MODES:
        check_file(cfg.ckpt_path, "ckpt_path", fix="point ckpt_path at a .pt file such as RUN_DIR/checkpoints/best.pt")
    # every number and switch: its type, finite, in range (trainer/config/values.py); mode=eval and mode=predict use
    # the checkpoint's own model and loss, so the command line's are not used (and refused if typed)
    check_values(cfg, skip=("model", "loss") if cfg.mode in CHECKPOINT_MODES else ())
    check_lr_range(cfg.lr_find)
