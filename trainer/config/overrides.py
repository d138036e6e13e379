"""Overrides as users type them. A path on the command line works as typed: Hydra's override grammar reserves
characters that paths hold (`=` in Lightning's `epoch=3-step=99.ckpt`, `( ) [ ] { } ' " , ~ # & ! ;`, and any letter
outside ASCII: a folder named in Hangul or with an accent), so a path key's value that Hydra would refuse or read as
something else is quoted before Hydra parses the command line. And a sweep job's folder is named by its overrides
with each path value shortened to its last part and a short hash of the whole path, so a sweep over folders makes
flat job folders (the full value stays in the job's .hydra/overrides.yaml)."""
import functools
import hashlib
import re

from trainer.config.stored import override_key

# The keys whose values are typed as they are: paths (the data, a table, a checkpoint, a weights file, the output
# folders) and a table's column names (which a spreadsheet may write in Hangul, with spaces or any punctuation).
PATH_KEYS = ("data.root", "data.path", "ckpt_path", "model.weights", "hydra.run.dir", "hydra.sweep.dir",
             "data.target", "data.id_column", "data.split_column")
MULTIRUN_FLAGS = ("-m", "--multirun")
SEPARATORS = re.compile(r"[\\/]")  # a value holding either is a path (POSIX or Windows)


@functools.cache
def parser() -> object:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def parsed_value(override: str) -> object:
    """What Hydra reads in `override` (a string, a number, a sweep, a list, ...); None when it cannot parse it."""
    from hydra.errors import HydraException

    try:
        return parser().parse_override(override).value()
    except HydraException:  # Hydra's OverrideParseException and friends
        return None


def quoted(value: str) -> str:
    """`value` as one quoted string of Hydra's grammar, read back exactly: inside single quotes only backslashes
    before a quote, and those at the end (before the closing quote), are escapes, so each run of them is doubled."""
    value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value) + "'"


def as_typed(args: list[str]) -> list[str]:
    """The command line with every path key's value quoted where Hydra would refuse it, or read it as anything but
    that path: in a sweep (-m), a value Hydra cannot parse is a list of paths separated by commas (each quoted); in a
    single run, a comma or a bracket is part of the path (Hydra would refuse a sweep or a list there anyway). null
    and interpolations are left as they are."""
    multirun = any(arg in MULTIRUN_FLAGS for arg in args)
    return [quoted_path(arg, multirun) for arg in args]


def quoted_path(arg: str, multirun: bool) -> str:
    key, sep, value = arg.partition("=")
    if not sep or arg.startswith("-") or override_key(arg) not in PATH_KEYS or value.startswith(("'", '"')):
        return arg
    if value.strip().lower() == "null" or value.startswith("${"):
        return arg
    read = parsed_value(arg)
    if (isinstance(read, str) and value == value.strip()) or (multirun and read is not None):  # Hydra trims spaces
        return arg  # a path already, or a sweep Hydra reads
    paths = value.split(",") if multirun else [value]
    return f"{key}={','.join(quoted(path) for path in paths)}"


def short_value(value: str) -> str:
    """A path's last part and a hash of the whole path (6 hex digits of SHA-1): two folders of one name in
    different places stay apart. Anything else as it is."""
    parts = [part for part in SEPARATORS.split(value) if part]
    if not SEPARATORS.search(value) or not parts:
        return value
    return f"{parts[-1]}-{hashlib.sha1(value.encode()).hexdigest()[:6]}"


def job_dir_name(overrides: list[str], exclude_keys: list[str]) -> str:
    """hydra.sweep.subdir: Hydra's override_dirname (the job's overrides but `exclude_keys`, sorted, joined by
    commas) with each path value shortened (short_value), so a path never makes nested folders. A job without path
    values gets the name Hydra gives it, so earlier sweeps are still found by folder name; a name over MAX_NAME bytes
    is cut, with a hash of the whole so that it stays unique (the full overrides are in the job's .hydra/)."""
    lines = sorted(str(line) for line in overrides if override_key(str(line)) not in set(exclude_keys))
    name = ",".join(short_line(line) for line in lines)
    if len(name.encode()) <= MAX_NAME:
        return name
    # a name longer than a file system allows (255 bytes): its start, and a hash of the whole, which stays unique
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return name.encode()[:MAX_NAME - 14].decode(errors="ignore") + "-" + digest


MAX_NAME = 200  # bytes of a job folder's name: under the usual 255, with room for set_aside/N and Hydra's suffixes


def short_line(line: str) -> str:
    key, _, value = line.partition("=")
    read = parsed_value(line) if SEPARATORS.search(value) else None
    return f"{key}={short_value(read)}" if isinstance(read, str) else line
