"""Which files of an image folder are read, as folders come: hidden entries (`.ipynb_checkpoints/`, `.DS_Store`,
macOS's `._*` and `__MACOSX/`, Windows' `Thumbs.db` and hidden files) are skipped at every level; a link is followed,
but no folder is entered twice (a link to its own folder ends there); only regular files are read (a named pipe
called `x.png` would block the reader forever); and the same file, reached twice by its resolved path or copied
byte for byte, is read once, so it can never land in two splits. Each is counted and logged.

The order of the files is torchvision's `make_dataset`'s (classes sorted, folders walked in sorted order, files
sorted by name), so a folder without any of the above is read, and split, exactly as before."""
import hashlib
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from trainer.errors import UserError
from trainer.logs import log

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
# Entries that are debris, not data, even without a leading dot: macOS's zip folder, Windows' recycle bin, system
# folder of a drive's root, and the thumbnail cache and folder settings Explorer leaves in image folders.
DEBRIS = frozenset({"__MACOSX", "$RECYCLE.BIN", "System Volume Information", "Thumbs.db", "desktop.ini"})
EXAMPLES = 3  # entries named in a log line


@dataclass
class Skipped:
    """What a scan left out, by kind, as paths relative to the scanned root."""
    hidden: list = field(default_factory=list)
    not_regular: list = field(default_factory=list)  # named pipes, sockets, devices
    broken_links: list = field(default_factory=list)
    revisited: list = field(default_factory=list)  # links to a folder already read
    duplicates: list = field(default_factory=list)  # a second path to a file, or a byte-identical copy
    conflicting: list = field(default_factory=list)  # one file under two classes: (path, [classes])


def is_hidden(entry: os.DirEntry) -> bool:
    """A dot entry, known debris, or (on Windows) an entry with the hidden attribute."""
    if entry.name.startswith(".") or entry.name in DEBRIS:
        return True
    attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0) if os.name == "nt" else 0
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def class_folders(folder: Path, skipped: Skipped) -> list[str]:
    """The sorted names of the class subfolders of `folder` (links to folders included), hidden ones left out; [] for
    a folder that does not exist. A link to a folder already a class (or to `folder` itself, or one above it) is no
    class of its own: it would file every image twice, under two labels. It is skipped and logged as a link to a
    folder already read; the real folder stays the class."""
    if not folder.is_dir():
        return []
    folders = []
    for entry in entries_of(str(folder)):
        if is_hidden(entry):
            skipped.hidden.append(entry.name)
        elif entry.is_dir():
            folders.append(entry)
    names, seen = [], {os.path.realpath(folder)}
    for entry in sorted(folders, key=lambda e: e.is_symlink()):  # real folders first: a link to one is the extra
        real = os.path.realpath(entry.path)
        if real in seen or os.path.realpath(folder).startswith(real + os.sep):
            skipped.revisited.append(entry.name)
            continue
        seen.add(real)
        names.append(entry.name)
    return sorted(names)


def image_files(folder: Path, root: Path, skipped: Skipped) -> list[str]:
    """Every regular image file under `folder`, at any depth, in make_dataset's order; a folder reached a second time
    (through a link) is not read again."""
    seen, found, pending = set(), [], [str(folder)]
    while pending:
        directory = pending.pop()
        real = os.path.realpath(directory)
        if real in seen:
            skipped.revisited.append(os.path.relpath(directory, root))
            continue
        seen.add(real)
        files = []
        for entry in entries_of(directory):
            if is_hidden(entry):
                skipped.hidden.append(os.path.relpath(entry.path, root))
            elif entry.is_dir():
                pending.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and is_regular(entry, root, skipped):
                files.append(entry.path)
        found.append((directory, files))
    return [path for _, files in sorted(found) for path in files]


def entries_of(directory: str) -> list[os.DirEntry]:
    """A folder's entries sorted by name; a folder the user may not read is one sentence (not "holds no images")."""
    try:
        return sorted(os.scandir(directory), key=lambda entry: entry.name)
    except PermissionError as error:
        raise UserError(f"{directory} cannot be read ({error.strerror}): give yourself read permission "
                        f"(chmod -R u+rX '{directory}') or move it out of data.root") from None


def is_regular(entry: os.DirEntry, root: Path, skipped: Skipped) -> bool:
    """Whether an image-named entry is a regular file (through links); a broken link or anything else is noted."""
    try:
        mode = os.stat(entry.path).st_mode
    except OSError:  # a link to nothing
        skipped.broken_links.append(os.path.relpath(entry.path, root))
        return False
    if not stat.S_ISREG(mode):
        skipped.not_regular.append(os.path.relpath(entry.path, root))
        return False
    return True


def content_key(path: str) -> str:
    """A hash of a file's bytes (BLAKE2b): byte-identical copies share it."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def same_files(paths: list[str]) -> list[list[int]]:
    """Groups (indices into `paths`, in order) of entries that are one file: the same resolved path, or the same
    bytes. Only files of equal size are hashed, so a folder without copies is read for its sizes alone."""
    by_real = defaultdict(list)
    for i, path in enumerate(paths):
        by_real[os.path.realpath(path)].append(i)
    by_size = defaultdict(list)
    for real in by_real:
        by_size[os.stat(real).st_size].append(real)
    groups = [by_real[real] for reals in by_size.values() if len(reals) == 1 for real in reals]
    for reals in (reals for reals in by_size.values() if len(reals) > 1):
        by_content = defaultdict(list)
        for real in reals:
            by_content[content_key(real)].extend(by_real[real])
        groups.extend(by_content.values())
    return [sorted(group) for group in groups]


def unique_samples(parts: dict[str, list[tuple[str, int]]], classes: list[str], root: Path, skipped: Skipped
                   ) -> dict[str, list[tuple[str, int]]]:
    """Each part's (path, label) samples with every file kept once. A file found twice under one class keeps the
    copy of the last part (test before val before train: a held-out split stays as the user made it) and the first
    path; a file filed under two classes has no label to learn, so every copy is dropped and it is named."""
    flat = [(name, sample) for name, samples in parts.items() for sample in samples]
    keep = set()
    for group in same_files([path for _, (path, _) in flat]):
        labels = sorted({flat[i][1][1] for i in group})
        if len(labels) > 1:
            skipped.conflicting.append((os.path.relpath(flat[group[0]][1][0], root), [classes[k] for k in labels]))
            continue
        chosen = max(group, key=lambda i: (list(parts).index(flat[i][0]), -i))
        keep.add(chosen)
        skipped.duplicates.extend(os.path.relpath(flat[i][1][0], root) for i in group if i != chosen)
    kept = {name: [] for name in parts}
    for i, (name, sample) in enumerate(flat):
        if i in keep:
            kept[name].append(sample)
    return kept


def log_skipped(skipped: Skipped, root: Path) -> None:
    """One log line per kind of entry a scan left out, with how many and the first few; conflicting labels as a
    warning (those images are missing from training)."""
    said = {"hidden": "hidden entries (a dot name or system debris, never a class or an image)",
            "not_regular": "entries that are not regular files (named pipes, sockets, devices)",
            "broken_links": "links to nothing", "revisited": "links to a folder already read (followed once)",
            "duplicates": "second copies of a file (the same file through a link, or the same bytes): each file is "
                          "read once, so it is in one split only"}
    for kind, what in said.items():
        entries = getattr(skipped, kind)
        if entries:
            log.info(f"data.root={root}: skipped {len(entries)} {what}: {examples(entries)}")
    if skipped.conflicting:
        named = [f"{path} (in {examples(labels)})" for path, labels in skipped.conflicting]
        log.warning(f"data.root={root}: left out {len(named)} image(s) filed under two or more classes (conflicting "
                    f"labels): {examples(named)}; keep each image under its one class")


def examples(entries: list[str]) -> str:
    shown = ", ".join(str(entry) for entry in entries[:EXAMPLES])
    return shown + (f" and {len(entries) - EXAMPLES} more" if len(entries) > EXAMPLES else "")
