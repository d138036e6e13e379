"""Where the config lives, and the checks a composed config must pass before any work starts."""
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from trainer.errors import UserError, first_line

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


def validate(cfg, modes):
    """Raise a UserError naming the key and the fix for values that would otherwise fail deep inside torch."""
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
    if not isinstance(cfg.seed, int):
        raise UserError(f"seed={cfg.seed} is invalid: use a whole number")


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
