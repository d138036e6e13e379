"""Where the config lives, and the checks a composed config must pass before any work starts."""
import difflib
import functools
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate
import yaml
from omegaconf import OmegaConf

from trainer.errors import UserError, first_line

# keys Hydra's instantiate acts on; a stored config may carry only the first two, where conf/ declares a target
SPECIAL_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")


@functools.cache
def declared_targets():
    """{(config path, target)} that losslab's own conf/ declares, e.g. ("loss.criterion", "torch.nn.NLLLoss"): the
    only targets a config read from a file may name."""
    found = set()
    for path in config_dir().rglob("*.yaml"):
        text = path.read_text()
        prefix = "" if "@package _global_" in text else ".".join(path.parent.relative_to(config_dir()).parts)
        found |= targets_in(yaml.safe_load(text) or {}, prefix)
    return frozenset(found)


def targets_in(node, path):
    if isinstance(node, list):
        return {t for item in node for t in targets_in(item, path)}
    if not isinstance(node, dict):
        return set()
    own = {(path, node["_target_"])} if "_target_" in node else set()
    return own | {t for key, value in node.items() for t in targets_in(value, f"{path}.{key}".lstrip("."))}


def option_of(group, node):
    """The option of a config group whose targets a (stored) node carries, e.g. "image_folder"; None if none."""
    wanted = targets_in(node, group)
    for path in sorted((config_dir() / group).glob("*.yaml")):
        if targets_in(yaml.safe_load(path.read_text()) or {}, group) == wanted:
            return path.stem
    return None


def check_stored(stored, *, source, overrides=()):
    """A config read from a file (a checkpoint's, a sweep's record) is data: refuse, in one sentence naming the key,
    any target losslab's conf/ does not declare at that place (unless this command line sets the same one), any other
    instantiate key, and any ${...} interpolation (a resolver could act). Nothing in it is called."""
    typed = {override_key(o): o.split("=", 1)[1] for o in overrides if "=" in o}
    for path, key, value in leaves(stored):
        where = f"{path}.{key}".lstrip(".")
        if key == "_target_" and (path, value) not in declared_targets() and typed.get(where) != value:
            raise UserError(f"{source} sets {where}={value}, which losslab's conf/ does not declare there: a stored "
                            f"config is data, never code, so it is refused (set {where}={value} on the command line "
                            f"if you trust it)")
        if key in SPECIAL_KEYS[2:]:
            raise UserError(f"{source} sets {where}, which only code may use: a stored config is data, so it is refused")
        if isinstance(value, str) and "${" in value:
            raise UserError(f"{source} holds an interpolation at {where} ({value}): a stored config is resolved values "
                            "only, so it is refused")


def leaves(node, path=""):
    """(path of the parent, key, value) for every entry of plain nested containers."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield path, key, value
        yield from leaves(value, f"{path}.{key}".lstrip("."))


def override_key(override):
    """The config key of a command-line override: "+trainer.epochs=3" -> "trainer.epochs"."""
    return override.split("=", 1)[0].lstrip("+~")


def config_dir():
    """conf/ of the source tree (editable install, checkout), else the copy a wheel ships as trainer/conf."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/config.yaml next to {here}: reinstall losslab")


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


def validate(cfg, modes, overrides=()):
    """Raise a UserError naming the key and the fix for values that would otherwise fail deep inside torch, and for
    keys the command line adds that losslab does not read."""
    check_added_keys(cfg, overrides)
    if cfg.mode not in modes:
        raise UserError(f"mode={cfg.mode} is not known: use one of {', '.join(f'mode={m}' for m in modes)}")
    if cfg.mode == "eval" and not cfg.ckpt_path:
        raise UserError("mode=eval needs a checkpoint: add ckpt_path=RUN_DIR/checkpoints/best.pt")
    if cfg.mode == "eval" and not Path(cfg.ckpt_path).is_file():
        raise UserError(f"ckpt_path={cfg.ckpt_path} does not exist: point it at a .pt file in a run's checkpoints/")
    if cfg.optimizer.lr != "auto":  # auto: trainer/lr_find.py's range test chooses it
        _positive(cfg.optimizer.lr, "optimizer.lr",
                  "the learning rate must be a number > 0 or auto, e.g. optimizer.lr=0.001")
    _check_lr_find(cfg.lr_find)
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


def check_added_keys(cfg, overrides):
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


def passed_to_a_target(cfg, key):
    """Whether `key` sits in a config node that is instantiated (it has a _target_): its keys are the target's
    keyword arguments."""
    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        node = OmegaConf.select(cfg, ".".join(parts[:depth]))
        if OmegaConf.is_dict(node) and "_target_" in node:
            return True
    return False


def dotted_keys(node, prefix=""):
    if not OmegaConf.is_dict(node):
        return [prefix.rstrip(".")]
    return [k for key in node for k in dotted_keys(node._get_node(key), f"{prefix}{key}.")] + (
        [prefix.rstrip(".")] if prefix else [])


def build(node, key, **kwargs):
    """hydra's instantiate, with a user's mistake in `key`'s config reported as one sentence naming it."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, UserError):  # nested targets wrap it once per level
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise UserError(f"{key} could not be built from {node.get('_target_', 'its config')}: "
                        f"{first_line(error.__cause__ or error)}") from None
