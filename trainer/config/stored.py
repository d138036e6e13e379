"""A config read from a file (a checkpoint's, a sweep's record) is data: what it may hold, and the targets that
moved since it was written."""
from collections.abc import Iterator, Sequence

from trainer.config.location import declared_targets
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
