"""Where losslab's own config lives (conf/, in a checkout or inside an installed wheel) and what it declares: the
targets each config path may name, and which option of a group a (stored) config node is."""
import functools
from collections.abc import Iterator
from pathlib import Path

import yaml


def config_dir() -> Path:
    """conf/ of the source tree (editable install, checkout), else the copy a wheel ships as trainer/conf."""
    package = Path(__file__).resolve().parents[1]  # trainer/
    for candidate in (package.parent / "conf", package / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/config.yaml next to {package}: reinstall losslab")


@functools.cache
def declared_targets() -> frozenset:
    """{(config path, target)} that losslab's own conf/ declares, e.g. ("loss.criterion", "torch.nn.NLLLoss"): the
    only targets a config read from a file may name."""
    found = set()
    for path in config_dir().rglob("*.yaml"):
        text = path.read_text()
        prefix = "" if "@package _global_" in text else ".".join(path.parent.relative_to(config_dir()).parts)
        found |= targets_in(yaml.safe_load(text) or {}, prefix)
    return frozenset(found)


@functools.cache
def declared_groups() -> dict:
    """{config group: frozenset of its options} that losslab's own conf/ declares, e.g. {"loss": {"ce", ...}}: the
    only group options a config read from a file may choose (a path such as loss=../../elsewhere is none of them)."""
    return {str(folder.relative_to(config_dir())): frozenset(path.stem for path in folder.glob("*.yaml"))
            for folder in config_dir().rglob("*") if folder.is_dir() and any(folder.glob("*.yaml"))
            and not is_hydras(folder.relative_to(config_dir()).parts)}


def is_hydras(group: tuple) -> bool:
    """Whether a folder of conf/ configures Hydra itself (conf/hydra/help/): not a setting a record may choose."""
    return bool(group) and group[0] == "hydra"


@functools.cache
def declared_keys() -> frozenset:
    """Every dotted key that config.yaml or an option of a group in losslab's own conf/ declares (at any depth, e.g.
    "model.hidden", "data.source.num_samples"), Hydra's own settings and defaults lists left out: the only keys a
    config read from a file may set."""
    return frozenset(key for prefix, node in declared_files() for key in keys_in(node, prefix))


@functools.cache
def declared_nodes() -> frozenset:
    """Every dotted key that conf/ declares as a node of keys: a config group ("model", "data") or a mapping inside
    one ("data.source", "trainer.early_stopping"). A command line that sets one to a number or a string
    (`trainer.early_stopping=3`) or removes a group (`~model`) has made a config no code can read."""
    found = set()
    for prefix, node in declared_files():
        found |= {prefix} if prefix else set()
        found |= {key for key in keys_in(node, prefix) if isinstance(select(node, key, prefix), dict)}
    return frozenset(found)


def declared_files() -> Iterator[tuple[str, dict]]:
    """(the dotted place it sits at, its keys) of config.yaml and every option of losslab's own conf/, Hydra's own
    settings and defaults lists left out."""
    for path in config_dir().rglob("*.yaml"):
        text = path.read_text()
        group = path.parent.relative_to(config_dir()).parts
        if is_hydras(group):
            continue
        prefix = "" if "@package _global_" in text or not group else ".".join(group)
        yield prefix, {key: value for key, value in (yaml.safe_load(text) or {}).items()
                       if key not in ("defaults", "hydra")}


def select(node: dict, key: str, prefix: str) -> object:
    """The value at dotted `key` (which starts with `prefix`) of a plain nested dict."""
    for part in key[len(prefix):].lstrip(".").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def keys_in(node: object, path: str) -> set:
    """The dotted paths of every key of nested dicts (a list is a value: its items are not keys)."""
    if not isinstance(node, dict):
        return set()
    return {k for key, value in node.items() for k in {f"{path}.{key}".lstrip(".")} | keys_in(
        value, f"{path}.{key}".lstrip("."))}


def targets_in(node: object, path: str) -> set:
    """{(config path, target)} of every `_target_` in a plain nested container, at any depth."""
    if isinstance(node, list):
        return {t for item in node for t in targets_in(item, path)}
    if not isinstance(node, dict):
        return set()
    own = {(path, node["_target_"])} if "_target_" in node else set()
    return own | {t for key, value in node.items() for t in targets_in(value, f"{path}.{key}".lstrip("."))}


def option_of(group: str, node: dict) -> str | None:
    """The option of a config group whose targets a (stored) node carries, e.g. "image_folder"; None if none."""
    wanted = targets_in(node, group)
    for path in sorted((config_dir() / group).glob("*.yaml")):
        if targets_in(yaml.safe_load(path.read_text()) or {}, group) == wanted:
            return path.stem
    return None


