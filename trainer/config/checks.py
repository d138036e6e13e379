"""The checks a composed config must pass before any work starts: every mistake is one sentence naming the key."""
from collections.abc import Collection, Sequence

from omegaconf import DictConfig, OmegaConf

from trainer.config.keys import check_added_keys
from trainer.config.location import declared_groups, declared_keys, declared_nodes
from trainer.config.paths import check_file
from trainer.config.values import check_values
from trainer.errors import UserError


CHECKPOINT_MODES = ("eval", "predict")  # modes that use a trained model: ckpt_path is required
AUTO_OR_BOOL = ("auto", True, False)  # a setting that losslab may decide (auto) or the user forces


def check_auto_or_bool(value: object, key: str) -> None:
    """A setting of auto, true or false (data.cache, model.cache_features)."""
    if value not in AUTO_OR_BOOL or (value in (0, 1) and not isinstance(value, bool)):
        raise UserError(f"{key}={value} is not known: use auto, true or false")


def check_lr_range(settings: DictConfig, key: str = "lr_find", what: str = "the range test") -> None:
    """The range test (mode=lr_find, optimizer.lr=auto; `key` lr_find) or the search of optimizer.lr=tune (lr_tune)
    ends above where it starts; checked in every mode, so a typo surfaces at once."""
    if settings.max_lr <= settings.min_lr:
        raise UserError(f"{key}.max_lr={settings.max_lr} is invalid: {what} ends at a rate above "
                        f"{key}.min_lr={settings.min_lr}, e.g. {key}.max_lr=10")


def check_nodes(cfg: DictConfig) -> None:
    """Every node of keys conf/ declares is still one (trainer/config/location.py:declared_nodes): the command line
    can replace `trainer.early_stopping` by `3`, `data.source` by a string, or remove `model` (`~model`), and no
    code can read what is left.

    Raises:
        UserError: the node, what it was set to, and the keys it holds to set instead.
    """
    for key in sorted(declared_nodes()):  # parents first: a refused parent is named before its children
        parent, _, name = key.rpartition(".")
        holder = OmegaConf.select(cfg, parent) if parent else cfg
        if not OmegaConf.is_dict(holder) or (name not in holder and parent):
            continue  # an option without this node
        value = holder.get(name) if name in holder else None
        if OmegaConf.is_dict(value) or (value is None and parent):
            continue
        inside = sorted(k for k in declared_keys() if k.rpartition(".")[0] == key and not k.rpartition(".")[2]
                        .startswith("_"))  # instantiate keys are no setting
        was = "removed" if name not in holder else f"set to {'null' if value is None else value}"
        raise UserError(f"{key} holds settings ({', '.join(inside[:3])}{', ...' if len(inside) > 3 else ''}) and "
                        f"was {was}: set one of its keys instead, e.g. {inside[0]}=VALUE"
                        + (f", or choose an option with {key}=OPTION" if key in declared_groups() else ""))


def validate(cfg: DictConfig, modes: Collection[str], overrides: Sequence[str] = ()) -> None:
    """Raise a UserError naming the key and the fix for values that would otherwise fail deep inside torch, and for
    keys the command line adds that losslab does not read."""
    check_added_keys(cfg, overrides)
    check_nodes(cfg)
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
    if "lr_tune" in cfg:
        check_lr_range(cfg.lr_tune, "lr_tune", "the search")
