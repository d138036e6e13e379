"""A config read from a file (a checkpoint's, a sweep's record) is data: what it may hold, and the targets that
moved since it was written."""
from collections.abc import Iterator, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, QuotedString, RangeSweep
from hydra.errors import HydraException

from trainer.config.location import declared_groups, declared_keys, declared_targets
from trainer.errors import UserError

# keys Hydra's instantiate acts on; a stored config may carry only the first two, where conf/ declares a target
SPECIAL_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")


def check_stored(stored: dict, *, source: str, overrides: Sequence[str] = ()) -> None:
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


def check_recorded_override(override: str, *, source: str) -> None:
    """An override read from a file (a sweep's record of its command) is data, held to an allow-list: it may name
    only a key or a group option that losslab's conf/ declares, with plain values (numbers, strings, booleans, null,
    lists of them, and Hydra's sweeps over them), no instantiate key, no interpolation. The user typed their own
    command line; someone else may have written the record.

    Raises:
        UserError: one sentence naming the override and what it would do.
    """
    fault = recorded_override_fault(override)
    if fault is not None:
        raise UserError(f"{source} records the override {override}, which {fault}: a sweep's record is data, never "
                        "code, so it is refused (give that override on the command line if you trust it)")


def recorded_override_fault(override: str) -> str | None:
    """Why a recorded override falls outside the allow-list of check_recorded_override; None if it is inside."""
    try:
        [parsed] = OverridesParser.create().parse_overrides([override])
    except HydraException:
        return "is not an override Hydra can read"
    key = parsed.key_or_group
    if key.split(".")[0] == "hydra" or "hydra." in key:
        return "changes Hydra's own settings (hydra.*: its callbacks, launcher, logging), which run code"
    if any(part in SPECIAL_KEYS for part in key.split(".")):
        return "names an instantiate key (only code may use one)"
    if parsed.package is not None:
        return f"moves a config node to another place (@{parsed.package})"
    if parsed.is_delete():
        return None if key in declared_keys() else f"deletes {key}, which losslab's conf/ does not declare"
    if key in declared_groups():
        return option_fault(key, parsed.value())
    if key not in declared_keys():
        return f"sets {key}, which losslab's conf/ does not declare"
    return value_fault(parsed.value())


def option_fault(group: str, value: object) -> str | None:
    """A recorded group choice must be an option of conf/GROUP/ by name, or null (Hydra would read a path such as
    ../../elsewhere/evil from outside conf/); a glob chooses among those options only."""
    if isinstance(value, Glob):
        return None
    chosen = [unquoted(option) for option in (value.list if isinstance(value, ChoiceSweep) else [value])]
    stray = [option for option in chosen if option is not None and (
        not isinstance(option, str) or option not in declared_groups()[group])]
    return f"chooses {stray[0]} for {group}, which is not an option in losslab's conf/{group}/" if stray else None


def unquoted(value: object) -> object:
    """The text of a quoted string (a path quoted as typed: trainer/config/overrides.py), any other value as it is."""
    return value.text if isinstance(value, QuotedString) else value


def value_fault(value: object) -> str | None:
    """Plain values only: numbers, strings, booleans, null, lists of them, sweeps over them; no dict (a config node,
    which could hold a _target_ at any depth) and no ${...} interpolation (a resolver could act)."""
    if isinstance(value, ChoiceSweep):
        return next(filter(None, map(value_fault, value.list)), None)
    if isinstance(value, (RangeSweep, IntervalSweep)) or value is None or isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, list):
        return next(filter(None, map(value_fault, value)), None)
    value = unquoted(value)
    if isinstance(value, str):
        return "holds an interpolation" if "${" in value else None
    if isinstance(value, dict):
        return "holds a config node as its value (it could name code at any depth)"
    return f"holds a {type(value).__name__}, not a plain value"


def leaves(node: object, path: str = "") -> Iterator[tuple[str, object, object]]:
    """(path of the parent, key, value) for every entry of plain nested containers."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield path, key, value
        yield from leaves(value, f"{path}.{key}".lstrip("."))


def override_key(override: str) -> str:
    """The config key of a command-line override: "+trainer.epochs=3" -> "trainer.epochs"."""
    return override.split("=", 1)[0].lstrip("+~")




# Targets a config written by an earlier losslab may name, and where they live now. A checkpoint stores its resolved
# config, targets included; on load (trainer/run/checkpoint.py) they are renamed here, once, before the config is
# checked against conf/ or compared for a resume, so checkpoints written before a move still evaluate and resume.
MOVED_TARGETS = {
    "trainer.images.image_folder": "trainer.data.image_folder",            # trainer/images.py -> trainer/data/
    "trainer.images.torchvision_dataset": "trainer.data.torchvision_dataset",
    "trainer.transfer.TransferModel": "trainer.models.TransferModel",      # trainer/transfer.py -> trainer/models/
}


def with_moved_targets(node: object) -> object:
    """A copy of a plain nested container with every `_target_` that moved renamed to where it is now."""
    if isinstance(node, list):
        return [with_moved_targets(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: MOVED_TARGETS.get(value, value) if key == "_target_" and isinstance(value, str)
            else with_moved_targets(value) for key, value in node.items()}
