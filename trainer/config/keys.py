"""Keys a command line names that losslab's config does not have: a misspelt key (`trainer.epoch=1`, `los=ce`), a key
of another option of its group (`data.root=...` while data=digits), a key added with `+` that nothing reads. Each is
one sentence naming the key the user meant, or the options that have it.

Hydra refuses an override whose key the composed config lacks before losslab's code runs; the CLI hands its error
to `misspelt_override`, which reads the key and the composed config from it (trainer/cli.py:main)."""
import difflib
import functools
import re
from collections.abc import Sequence

import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from trainer.config.location import config_dir, option_of
from trainer.config.stored import leaves, override_key
from trainer.errors import UserError

SIMILAR = 0.6  # difflib's ratio from which a sibling key counts as the one meant ("epoch" -> "epochs": 0.91)
SIMILAR_ELSEWHERE = 0.8  # ... for a key of another section, whose name alone is compared

# Hydra 1.3's message for an override of a key the config lacks (hydra/_internal/config_loader_impl.py)
HYDRA_NO_SUCH_KEY = re.compile(r"Could not override '(?P<key>[^']+)'\.\nTo append to your config use \+(?P<line>.+)",
                               re.DOTALL)


def check_added_keys(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """A key added with `+key=value` (or `++`) must be one losslab reads: a keyword of a `_target_` (the target then
    checks it), not a typo such as `+trainer.epoch=1` that would silently train the default 20 epochs."""
    for override in overrides:
        if not override.startswith("+"):
            continue
        key = override_key(override)
        if key.split(".")[0] == "hydra" or passed_to_a_target(cfg, key):
            continue
        raise UserError(unknown_key(cfg, override, added=True))


def misspelt_override(error: BaseException) -> UserError | None:
    """Hydra's refusal of an override whose key the composed config lacks, as one sentence (`unknown_key`); None for
    any other error (Hydra's own message then stands)."""
    cause = error.__cause__
    match = HYDRA_NO_SUCH_KEY.fullmatch(str(error)) if isinstance(error, ConfigCompositionException) else None
    if match is None or not isinstance(cause, (ConfigAttributeError, ConfigKeyError)) or cause.parent_node is None:
        return None
    composed = cause.parent_node._get_root()  # the config as composed up to the override Hydra refused
    return UserError(unknown_key(composed, match["line"], added=False))


def unknown_key(cfg: DictConfig, override: str, *, added: bool) -> str:
    """The sentence for `override` (as typed, `+` included) whose key `cfg` lacks: the options of its group that have
    it, else the closest key, else (in a node that builds a target) how to pass it to the target, else remove it."""
    key, value = override_key(override), override.split("=", 1)[1] if "=" in override else ""
    said = f"{override} {'adds' if added else 'names'} {key}, which"
    group, _, rest = key.partition(".")
    chosen = option_of(group, OmegaConf.to_container(cfg[group])) if declared_keys(group) and group in cfg else None
    where = f"{group}={chosen}" if chosen else f"the chosen {group} option"
    owners = [f"{group}={option}" for option, keys in declared_keys(group).items() if rest in keys and option != chosen]
    if owners:
        return (f"{said} {where} does not have: it is a key of {' and '.join(', '.join(owners).rsplit(', ', 1))}, so "
                f"add the one you mean (`{group}=OPTION {key}={value}`)")
    close = closest_key(cfg, key)
    if close is not None:
        return f"{said} losslab does not read: use {close}={value}"
    parent = OmegaConf.select(cfg, key.rpartition(".")[0], default=None) if "." in key else None
    if not added and OmegaConf.is_dict(parent) and "_target_" in parent:
        return f"{said} {where} does not have: to pass it to {parent._target_} as a keyword, write +{override}"
    return f"{said} losslab does not read: remove it (`train --cfg job` lists the keys)"


def closest_key(cfg: DictConfig, key: str) -> str | None:
    """The key of `cfg` most likely meant by `key`: a sibling of a similar name or with the typed name's initials
    (`learning_rate` -> `lr`), else a key elsewhere with a very similar last name (`epochs` -> `trainer.epochs`)."""
    parent, _, name = key.rpartition(".")
    known = [k for k in dotted_keys(cfg) if k != key and (key.startswith("hydra.") or not k.startswith("hydra"))]
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == parent}
    for candidate, full in siblings.items():
        if min(len(name), len(candidate)) > 1 and (initials(name) == candidate or initials(candidate) == name):
            return full
    close = difflib.get_close_matches(name, list(siblings), n=1, cutoff=SIMILAR)
    if close:
        return siblings[close[0]]
    elsewhere = {}
    for k in known:  # the first key of a name, in the config's order: `epochs` is trainer.epochs, not lr_tune.epochs
        elsewhere.setdefault(k.rpartition(".")[2], k)
    close = difflib.get_close_matches(name, list(elsewhere), n=1, cutoff=SIMILAR_ELSEWHERE)
    return elsewhere[close[0]] if close else None


def initials(name: str) -> str:
    """learning_rate -> lr: how a long name is often shortened."""
    return "".join(word[0] for word in name.split("_") if word)


@functools.cache
def declared_keys(group: str) -> dict[str, frozenset]:
    """{option: its dotted keys, without the group} of a config group as conf/GROUP/*.yaml write them; {} for a name
    that is not a group. E.g. declared_keys("data")["image_folder"] holds "root" and "source.root"."""
    folder = config_dir() / group
    if not group or not folder.is_dir():
        return {}
    options = {path.stem: yaml.safe_load(path.read_text()) or {} for path in sorted(folder.glob("*.yaml"))}
    return {option: frozenset(f"{path}.{key}".lstrip(".") for path, key, _ in leaves(node) if key != "defaults")
            for option, node in options.items()}


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
