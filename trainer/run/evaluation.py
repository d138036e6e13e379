"""mode=eval: test a checkpoint. The run is assembled exactly as training assembles it: the run's own model and loss
(values stored in the checkpoint, which are data: never a target losslab's conf/ does not declare), the run's own data
or the data this command line chooses (a new test set, checked against the model's input shape and classes), and
this command's trainer.* settings (device, precision, channels_last, compile)."""
from __future__ import annotations

import copy
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from trainer.config import check_stored, config_dir, leaves, option_of, override_key
from trainer.errors import UserError
from trainer.logs import log
from trainer.metrics import CALIBRATION, PER_CLASS_ACC, TEST, pass_results, pass_tags, result_line
from trainer.metrics.scores import per_class_accuracy
from trainer.run import checkpoint, rundir
from trainer.run.assemble import assemble
from trainer.run.checkpoint import Progress
from trainer.run.loop import evaluate
from trainer.run.tracking import Tracker
from trainer.runtime import distributed

FIXED = ("model", "loss")  # what a checkpoint is: the command line cannot change them


def evaluate_checkpoint(cfg: DictConfig, place: rundir.Place, *, overrides: Sequence[str] = ()) -> dict[str, object]:
    state = checkpoint.load(cfg.ckpt_path)
    check_stored(state["config"], source=f"ckpt_path={cfg.ckpt_path}", overrides=overrides)
    parts = assemble(eval_config(state["config"], cfg, overrides), for_training=False, weights=state["model"])
    check_classes(state.get("classes"), parts.classes, cfg)
    test = evaluate(parts.net, parts.loaders.test, objective=parts.objective, runtime=parts.runtime, desc="test")
    progress = Progress.from_state(state)
    epoch = progress.epoch
    classes = {CALIBRATION: test["calibration"], PER_CLASS_ACC: per_class_accuracy(test["confusion"])} if (
        "confusion" in test) else {}  # a regression has neither
    metrics = {**pass_results(TEST, test), **classes, "ckpt_path": str(cfg.ckpt_path), "epoch": epoch}
    if not distributed.is_main():  # under torchrun each rank tests its shard, the sums are shared; rank 0 writes
        return metrics
    tracker = Tracker(place.run_dir)
    tracker.scalars(pass_tags(TEST, test), progress.global_step)  # where the run's own test values are
    tracker.close()
    rundir.write_json(metrics, place.run_dir / "metrics.json")
    log.info(f"test {result_line(test)}  ({cfg.ckpt_path}) -> {place.run_dir}")
    return metrics


def own_config(stored: dict, cfg: DictConfig, overrides: Sequence[str], *, does: str) -> DictConfig:
    """A checkpoint's own config (`stored`) with this command's trainer section, mode and ckpt_path: what mode=eval
    and mode=predict start from; a model that started from pretrained weights is built without reading them (the
    checkpoint holds every weight: a weights file moved since, or no network, is no obstacle). `does`: what the mode
    does with the checkpoint's model, for the sentence.

    Raises:
        UserError: the command line overrides the model or the loss, which the checkpoint holds.
    """
    fixed = [o for o in overrides if override_key(o).split(".")[0] in FIXED]
    if fixed:
        raise UserError(f"mode={cfg.mode} {does} the checkpoint's own model and loss, so {fixed[0]} cannot apply: "
                        f"remove it (ckpt_path={cfg.ckpt_path} holds them)")
    config = OmegaConf.create(stored)
    config.trainer, config.mode, config.ckpt_path = cfg.trainer, cfg.mode, cfg.ckpt_path
    if "weights" in config.model:  # pretrained weights a model started from: the checkpoint holds all of its own
        config.model.load_weights = False
    return config


def eval_config(stored: dict, cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The config to assemble: the run's own (stored), with this command's trainer section and, when the command line
    sets any data key, this command's data section."""
    touched = {override_key(o).split(".")[0] for o in overrides}
    config = own_config(stored, cfg, overrides, does="tests")
    if "data" in touched:
        config.data = new_data(stored, cfg, overrides)
    else:
        never_download(config.data)  # a shared checkpoint's data.root must not make losslab write files
    return config


# what the model was trained with rather than what the data holds: new data is normalised with the training split's
# statistics and resized to the training size, as the model expects, and cut by the method the run's data was cut by;
# a table is encoded with the preprocessing fitted on the training rows, for the task it was trained for, and tested on
# the rows its split column names test, as the run was
TRAINED_WITH = ("mean", "std", "image_size", "target_stats", "split", "split_column", "preprocessing", "task")


def new_data(stored: dict, cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """This command's data, if the checkpoint's model can take it: with `data=OPTION` the data this command composes;
    with only `data.KEY=...` the run's own data with those keys changed (values that follow them, such as data.shape
    from data.image_size, follow them again)."""
    typed = {override_key(o) for o in overrides}
    if "data" in typed:
        node = copy.deepcopy(cfg).data
    else:
        node = changed_data(stored["data"], cfg, sorted(k for k in typed if k.startswith("data.")))
    for key in TRAINED_WITH:  # the model's own input statistics and size, unless this command sets them
        if f"data.{key}" not in typed and stored["data"].get(key) is not None:
            node[key] = stored["data"][key]
    data = OmegaConf.to_container(node, resolve=True)
    shape, trained_on = data["shape"], list(stored["data"]["shape"])
    if shape is not None and list(shape) != trained_on:  # None: a table's, which its stored preprocessing decides
        raise UserError(f"data.shape={shape} differs from the {trained_on} the checkpoint's model was trained on: set "
                        "data.channels and data.image_size to match")
    return OmegaConf.create(data)


def changed_data(run_data: dict, cfg: DictConfig, keys: Sequence[str]) -> DictConfig:
    """The run's data section with this command's values at `keys`, as the option's own YAML (not yet resolved) so
    that interpolated values follow."""
    option = option_of("data", run_data)
    if option is None:
        raise UserError(f"ckpt_path={cfg.ckpt_path} was trained on data losslab's conf/ does not declare: set data="
                        "OPTION on the command line to evaluate on other data")
    template = OmegaConf.load(config_dir() / "data" / f"{option}.yaml")
    values = OmegaConf.create(run_data)
    for path, key, value in leaves(OmegaConf.to_container(template)):
        where = f"{path}.{key}".lstrip(".")
        interpolated = isinstance(value, str) and "${" in value or isinstance(value, (dict, list))
        if not interpolated and OmegaConf.select(values, where) is not None:
            OmegaConf.update(template, where, OmegaConf.select(values, where), force_add=True)
    for key in keys:  # a key the user set wins even where the YAML interpolates it
        OmegaConf.update(template, key.split(".", 1)[1], OmegaConf.select(cfg, key), force_add=True)
    return template


def never_download(data: DictConfig) -> None:
    for node in (data, data.get("source", {})):
        if "download" in node:
            node.download = False


def check_classes(trained: Sequence[str] | None, found: Sequence[str] | None, cfg: DictConfig) -> None:
    if trained is not None and found is not None and list(trained) != list(found):
        raise UserError(f"the data names the classes {found}, but ckpt_path={cfg.ckpt_path} was trained on {trained}: "
                        "evaluate it on data with the same classes")
