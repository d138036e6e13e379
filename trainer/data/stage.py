"""The data stage of a run: one call, `prepare_data`, from the composed config to the splits a run trains and tests
on and the config with what the data decided filled in. Each step is done the same way for every source."""
import copy
from dataclasses import replace

from hydra.utils import get_object
from omegaconf import DictConfig

from trainer.config import build
from trainer.config.checks import check_auto_or_bool
from trainer.config.values import check_values
from trainer.data.balance import class_counts, with_imbalance
from trainer.data.cache import cache_splits
from trainer.data.labels import target_statistics, with_label_noise
from trainer.data.normalization import channel_statistics, channel_values, normalized
from trainer.data.splits import (MIN_TO_STRATIFY, MapInputs, Splits, check_split_fits_task, check_splits,
                                  count_classes, labels_of)
from trainer.errors import UserError
from trainer.logs import log
from trainer.metrics import CLASSIFICATION, REGRESSION


def prepare_data(cfg: DictConfig, *, for_training: bool = True) -> tuple[DictConfig, Splits]:
    """The splits a run needs, and a copy of the config with what the data decided filled in (data.num_classes,
    data.image_size and so data.shape, data.target_stats, data.mean and data.std, data.class_counts). In order:

    1. the data keys checked; the image size a pretrained model expects (before anything is decoded);
    2. the source builds its splits (`data.source`, seeded by `seed`) and says what it read from the data
       (`Splits.facts`: a table's task, split method, shape and fitted preprocessing); the class count; the splits
       checked;
    3. data.imbalance (training only); the samples per class logged; a regression's target statistics (training
       only: evaluation keeps the checkpoint's);
    4. data.cache, data.normalize, data.label_noise (training labels only), the class counts, the augmentation.

    `for_training=False` (mode=eval) prepares the test split alone. Only private random generators are used, so the
    model's initialisation that follows is the same whatever the data stage did.

    Raises:
        UserError: a data key, the data itself (too few classes, an empty split, an unreadable file) or a source's
            own check, in one sentence naming the key.
    """
    check_settings(cfg.data)
    model_class = class_of(cfg.model)
    cfg = with_data_facts(cfg, image_size=expected_image_size(cfg, model_class))
    cfg, splits = source_splits(cfg)
    classifies, count = cfg.data.get("task", CLASSIFICATION) == CLASSIFICATION, cfg.data.num_classes
    names = ("train", "val", "test") if for_training else ("test",)
    check_splits(splits, names, classifies=classifies)
    if classifies:  # data.imbalance long-tails the training split only
        splits = with_imbalance(splits, cfg.data.get("imbalance") if for_training else None, num_classes=count,
                                seed=cfg.seed)
        log_class_counts(splits, names, cfg.data.get("split", "random"))
    if not classifies and for_training:
        cfg = with_data_facts(cfg, target_stats=target_statistics(splits))
    splits = cache_splits(splits, cfg.data, names=names)
    values = normalization(cfg, splits, model_class)
    if values is not None:
        cfg = with_data_facts(cfg, mean=values[0], std=values[1])
        splits = normalized(splits, *values)
    if for_training:
        splits = with_label_noise(splits, cfg.data.get("label_noise", 0), num_classes=cfg.data.num_classes,
                                  seed=cfg.seed)
        cfg = with_data_facts(cfg, class_counts=class_counts(splits.train, count) if classifies else None)
    return cfg, augmented(splits)


def source_splits(cfg: DictConfig) -> tuple[DictConfig, Splits]:
    """The source's splits (`data.source`, seeded by `seed`), and the config with what it read from the data (a
    table's task and columns: `Splits.facts`), the class count and the image size filled in."""
    splits = build(cfg.data.source, "data", seed=cfg.seed)
    cfg = with_data_facts(cfg, **splits.facts)
    check_balance(cfg.data)  # again: a table's task is known now
    classifies = cfg.data.get("task", CLASSIFICATION) == CLASSIFICATION
    count = count_classes(cfg.data.num_classes, splits) if classifies else cfg.data.num_classes
    return with_data_facts(cfg, num_classes=count, image_size=splits.image_size), splits


def with_data_facts(cfg: DictConfig, **facts: object) -> DictConfig:
    """A copy of the config with what the data decided filled in where the config leaves it null: data.num_classes,
    data.image_size (and so data.shape), data.mean and data.std, data.target_stats, data.class_counts, and what a
    source read from the data (a table's data.task, data.split, data.shape and data.preprocessing). The model and
    loss configs read them by interpolation, and checkpoints store the filled-in values. The caller's config is left
    as it was."""
    missing = {key: value for key, value in facts.items() if value is not None and cfg.data.get(key, 0) is None}
    if not missing:
        return cfg
    cfg = copy.deepcopy(cfg)
    for key, value in missing.items():
        cfg.data[key] = value
    return cfg


def class_of(cfg_model: DictConfig) -> type | None:
    """The class a model config builds, for the hooks it offers before it is built (trainer/models/__init__.py lists them);
    None when it cannot be found (building the model then says why)."""
    try:
        return get_object(cfg_model._target_)
    except Exception:  # an unknown target: build() reports it, in one sentence
        return None


def expected_image_size(cfg: DictConfig, model_class: type | None) -> int | None:
    """data.image_size=null with a model whose weights expect an image size (a pretrained network's `input_size`):
    that size, before anything is decoded. Otherwise None: the source decodes the images at their own size."""
    hook = getattr(model_class, "input_size", None)
    if hook is None or cfg.data.get("image_size", 0) is not None:
        return None
    size = hook(cfg.model)
    log.info(f"data.image_size=null: {size} px, the size the model's weights were trained at")
    return size


def normalization(cfg: DictConfig, splits: Splits, model_class: type | None
                  ) -> tuple[list[float], list[float]] | None:
    """data.normalize: the per-channel (mean, std) the data stage standardises inputs with, or None. They are
    data.mean/data.std, or with null the training split's statistics. A model that normalises its own input
    (`normalizes_input`: a pretrained network, with its weights' values) gets the images as decoded, so it sees
    them normalised once; data.mean/data.std given for it would normalise them twice."""
    data = cfg.data
    if getattr(model_class, "normalizes_input", False):
        if data.get("mean") is not None:
            raise UserError(f"data.mean={data.mean} and data.std={data.std} would normalise the images a second time: "
                            "a pretrained model normalises them itself, with its weights' own mean and std; set "
                            "data.mean=null data.std=null")
        log.info("data.normalize: the pretrained model normalises its input itself, with its weights' mean and std")
        return None
    if not data.get("normalize", False):
        return None
    if data.get("mean") is None:
        mean, std = channel_statistics(splits.train, num_workers=data.num_workers, seed=cfg.seed)
        source = "the training split's"
    else:
        mean, std = (channel_values(data[key], f"data.{key}", data.shape[0]) for key in ("mean", "std"))
        source = "data.mean and data.std"
    rounded = lambda values: "[" + ", ".join(f"{v:.3g}" for v in values) + "]"
    log.info(f"data.normalize=true: inputs standardised with per-channel mean {rounded(mean)} and std "
             f"{rounded(std)} ({source})")
    return mean, std


def check_settings(cfg_data: DictConfig) -> None:
    """The data stage's keys, checked before any data is read; a mistake is one sentence naming the key."""
    check_values(cfg_data, under="data")  # every number and switch (trainer/config/values.py)
    check_balance(cfg_data)
    if cfg_data.get("mean") is not None and not cfg_data.get("normalize", False):
        raise UserError(f"data.mean={cfg_data.mean} is set but data.normalize=false: set data.normalize=true to use "
                        "it, or data.mean=null data.std=null")
    if (cfg_data.get("mean") is None) != (cfg_data.get("std") is None):
        raise UserError("data.mean and data.std go together: set both (e.g. data.mean=0.5 data.std=0.5) or neither "
                        "(null: the training split's statistics)")
    check_auto_or_bool(cfg_data.get("cache", False), "data.cache")
    check_split_fits_task(cfg_data.get("split", "random"), cfg_data.get("task", CLASSIFICATION))


def check_balance(cfg_data: DictConfig) -> None:
    """data.imbalance and data.sampler (their values: trainer/config/values.py) are made of classes: refused for
    regression data (a table whose task its target decides is checked once the source has read it)."""
    for key in ("imbalance", "sampler"):
        value = cfg_data.get(key)
        if value is not None and cfg_data.get("task") == REGRESSION:
            raise UserError(f"data.{key}={value} is made of classes, and this is regression data (data.task="
                            f"{cfg_data.task}): leave data.{key}=null")


def augmented(splits: Splits) -> Splits:
    """The source's random train-time transform (data.augment), applied on access after caching and normalising
    (a random crop and flip commute with a per-channel affine map, so the order does not change the values)."""
    if splits.augment is None or splits.train is None:
        return splits
    return replace(splits, train=MapInputs(splits.train, splits.augment), augment=None)  # applied: not twice


def log_class_counts(splits: Splits, names: tuple[str, ...], method: str) -> None:
    """One log line per split with its samples per class, and one for each class that has no sample in a split the
    others have it in (too few to stratify, or a random split that left it out), with how many it has in all."""
    counts = {name: labels_of(getattr(splits, name)).bincount(minlength=len(splits.classes or ())).tolist()
              for name in names}
    classes = splits.classes or [str(k) for k in range(max(len(c) for c in counts.values()))]
    for name, per_class in counts.items():
        log.info(f"{name} split ({method}): {sum(per_class)} samples, per class "
                 + ", ".join(f"{label} {count}" for label, count in zip(classes, per_class)))
    for k, label in enumerate(classes):
        missing = [name for name, per_class in counts.items() if k >= len(per_class) or per_class[k] == 0]
        if missing and len(missing) < len(counts):
            total = sum(per_class[k] for per_class in counts.values() if k < len(per_class))
            why = (f"too few for one in each split ({MIN_TO_STRATIFY} needed)" if total < MIN_TO_STRATIFY else
                   "the split's own data holds none of it (an image folder's val/ or test/, a split column)"
                   if method == "stratified" else
                   f"and the random split left it out (data.split=stratified gives every class with at least "
                   f"{MIN_TO_STRATIFY} samples one in each split)")
            log.warning(f"class {label} has {total} samples, none in the {' or '.join(missing)} split: {why}; the "
                        f"{' and '.join(missing)} figures say nothing about it")

