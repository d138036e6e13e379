"""Paths a config key points at (ckpt_path, data.root, model.weights): what is actually there, in one sentence naming
the key: a folder where a file is wanted (and the files it holds that fit), a file where a folder is wanted, nothing,
or something the user may not read."""
import os
from pathlib import Path

from trainer.errors import UserError


def check_file(path: str | Path, key: str, *, fix: str, suffix: str = ".pt") -> Path:
    """`path` as a readable regular file.

    Raises:
        UserError: it is missing, a folder (naming the `suffix` files inside it), not a regular file, or unreadable.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        inside = sorted(str(p.relative_to(path)) for p in [*path.glob(f"*{suffix}"), *path.glob(f"*/*{suffix}")])
        found = f"; it holds {' and '.join(inside[:2])}" if inside else ""
        raise UserError(f"{key}={path} is a folder, not a file{found}: {fix}")
    if not path.exists():
        raise UserError(f"{key}={path} does not exist: {fix}")
    if not path.is_file():
        raise UserError(f"{key}={path} is not a regular file (a pipe or a device): {fix}")
    if not os.access(path, os.R_OK):
        raise UserError(f"{key}={path} cannot be read (no read permission): make it readable (chmod u+r) or {fix}")
    return path


def check_folder(path: str | Path, key: str, *, fix: str) -> Path:
    """`path` as a folder whose entries can be listed.

    Raises:
        UserError: it is missing, a file, or cannot be listed (no permission), naming `key`.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{key}={path} is a file, not a folder: {fix}")
    if not path.exists():
        raise UserError(f"{key}={path} does not exist: {fix}")
    unlisted = unreadable_folder(path)
    if unlisted is not None:
        raise UserError(f"{key}={path} cannot be read ({unlisted}): give yourself permission to read it "
                        f"(chmod -R u+rX '{path}') or {fix}")
    return path


def unreadable_folder(path: Path) -> str | None:
    """Why the entries of a folder cannot be listed (e.g. "Permission denied"), or None if they can. Python's os.walk
    (and with it torchvision's folder readers) skips such a folder silently, as if it were empty."""
    try:
        with os.scandir(path):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__
