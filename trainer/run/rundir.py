"""Run folders: claiming a unique one, which folder a run writes into, and the records a run leaves there
(status.json, metrics.json). A folder that holds another run's files, or the user's own, is never written into by
accident; a folder that cannot be made is one sentence naming it.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from trainer.config import job_dir_name
from trainer.errors import UserError, first_line, refuse


def claim_dir(base: str) -> str:
    """Create and return `base`, or `base_2`, `base_3`, ... if it exists: two runs or sweeps started in the
    same second get separate folders. os.mkdir is atomic, so two processes cannot claim the same name.
    Under torchrun no rank claims: every rank takes `base` as it is, built from rank 0's start time (shared
    through LOSSLAB_RUN_TIME by trainer.runtime.distributed), so all ranks write to one run dir; a claim could race
    with another rank's Hydra creating the same folder."""
    if "LOSSLAB_RUN_TIME" in os.environ:
        make_folder(Path(base).parent, key="hydra.run.dir")
        return base
    for candidate in (base if n == 1 else f"{base}_{n}" for n in range(1, 10_000)):
        for _ in range(3):  # the parent may vanish between the two calls: a refused run removes it when empty
            make_folder(Path(base).parent, key="hydra.run.dir")
            try:
                os.mkdir(candidate)
                return candidate
            except FileNotFoundError:
                continue
            except FileExistsError:
                break
            except OSError as error:
                raise cannot_make(candidate, error, key="hydra.run.dir") from None
    raise UserError(f"{base}: no free folder name left: set hydra.run.dir to a new folder")


# What to do when the system refuses a folder or a file, by the error's number; anything else: FIX_OTHER.
FIXES = {errno.ENAMETOOLONG: "a name in it is longer than the file system allows: choose shorter names for {key}",
         errno.ENOTDIR: "{blocker} is a file, not a folder: move it, or point {key} elsewhere",
         errno.EEXIST: "{blocker} is a file, not a folder: move it, or point {key} elsewhere",
         errno.ENOSPC: "free some space on that disk, then run again (a run with checkpoints/last.pt resumes from it)",
         errno.EDQUOT: "free some space within your disk quota, then run again (a run with checkpoints/last.pt "
                       "resumes from it)",
         errno.EFBIG: "the file system (or `ulimit -f`) allows no larger file: make room, then run again (a run with "
                      "checkpoints/last.pt resumes from it)"}
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the disk, the quota or the file size limit is full
FIX_OTHER = "point {key} at a folder you can write to (runs go to outputs/ under the folder you start train in)"


def cannot_make(path: str | Path, error: OSError, *, key: str) -> UserError:
    """A system error while making or writing `path` as one sentence: the path, the system's reason (and the file it
    names, when that is another), and what to do about `key` (the setting that chose the path)."""
    path = Path(path).absolute()
    named = Path(error.filename).absolute() if error.filename else path
    named = f": {named}" if named != path else ""
    fix = FIXES.get(error.errno, FIX_OTHER).format(key=key, blocker=blocker(path))
    return UserError(f"{path} cannot be written ({error.strerror or first_line(error)}{named}): {fix}")


def blocker(path: Path) -> Path:
    """The file that stands where `path` or one of its folders should be (`path` itself if none does)."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists() and not candidate.is_dir():
                return candidate
        except OSError:  # a name too long to look up
            continue
    return path


def make_folder(folder: str | Path, *, key: str) -> Path:
    """Make `folder` and its parents (nothing if it is there); a system error is one sentence (cannot_make)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise cannot_make(folder, error, key=key) from None
    return folder


def folder_of(config: DictConfig, key: str) -> Path:
    """The folder config[key] names (hydra.run.dir, hydra.sweep.dir), resolved: its `unique_dir` claims it."""
    try:
        return Path(str(OmegaConf.select(config, key)))
    except Exception as error:  # OmegaConf wraps what a resolver raises; a refusal is in the chain
        cause = error
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        raise cause or error from None


class FolderCallback(Callback):
    """Registered first under hydra.callbacks (conf/config.yaml): makes a run's folder before Hydra would, so a
    folder the system refuses (read-only, a file in the way, a name too long, no outputs/ possible where train
    starts) is one sentence and exit status 2, not Hydra's traceback. A sweep's folder: trainer/sweep/callback.py."""

    def on_run_start(self, config: DictConfig, **kwargs: object) -> None:
        try:
            make_folder(folder_of(config, "hydra.run.dir"), key="hydra.run.dir")
        except UserError as error:
            refuse(error)


def register_resolvers() -> None:
    """`${unique_dir:...}` in conf/config.yaml's hydra.run.dir and hydra.sweep.dir, and `${job_dir_name:...}` in
    hydra.sweep.subdir (trainer/config/overrides.py); the CLI calls this before Hydra composes (the joblib and
    submitit launchers' jobs find both: tested). use_cache: the sweep dir is resolved once per sweep; Hydra copies the
    cache into every job's config (also when a launcher pickles the config to another process), so all jobs agree on
    the folder it claimed."""
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", claim_dir, use_cache=True)
    if not OmegaConf.has_resolver("job_dir_name"):
        OmegaConf.register_new_resolver("job_dir_name", job_dir_name)


def holds_a_run(folder: str | Path) -> bool:
    """Whether a folder holds a run's record: Hydra's .hydra/ or a TensorBoard events file."""
    folder = Path(folder)
    return (folder / ".hydra").is_dir() or any(folder.glob("events.out.tfevents.*"))


def home_of(ckpt_path: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to: RUN for RUN/checkpoints/NAME.pt when RUN holds a run's record. A
    checkpoint anywhere else is loose and has no home."""
    path = Path(ckpt_path).resolve()
    run = path.parent.parent
    return run if path.parent.name == "checkpoints" and holds_a_run(run) else None


RUN_FILES = ("metrics.json", "status.json")  # besides .hydra/, checkpoints and TensorBoard events


def holds_any_run_file(folder: str | Path) -> bool:
    folder = Path(folder)
    return holds_a_run(folder) or any((folder / "checkpoints").glob("*.pt")) or any(
        (folder / name).exists() for name in RUN_FILES)


@dataclass
class Place:
    """The folder a run writes into, decided before anything is written. A fresh folder is the run's own from the
    start; the folder of a run being resumed becomes this run's only when the resume is accepted (`begin`), so a
    refused resume leaves it exactly as it was."""
    run_dir: Path
    continuing: bool = False
    begun: bool = False
    on_begin: object = None  # called once when a continuing run's resume is accepted (the CLI opens train.log)

    def begin(self) -> None:
        if self.continuing and not self.begun and self.on_begin is not None:
            self.on_begin()
        self.begun = True

    @property
    def ours(self) -> bool:
        return not self.continuing or self.begun


def place(cfg: DictConfig, new_dir: str | Path, overrides: Sequence[str] | None = None) -> Place:
    """Where a run writes: a resumed run continues in the run folder its checkpoint belongs to (the same TensorBoard
    run); any other run, and the resume of a loose checkpoint, in the new folder Hydra made for it, which must hold
    neither another run's files nor the user's own (hydra.run.dir can point anywhere). `overrides`: this command's;
    the folder of the same command's run that failed or stopped before any checkpoint is set aside and used again
    (None: never, as for a sweep's job, whose sweep decides)."""
    if cfg.mode == "train" and cfg.ckpt_path and Path(cfg.ckpt_path).is_file():
        home = home_of(cfg.ckpt_path)
        if home is not None:
            return Place(home, continuing=True)
    if is_rank_0():  # the others follow its decision (and would see the files it has begun to write)
        refuse_another_run(Path(new_dir), cfg.mode, overrides)
    return Place(Path(new_dir))


def is_rank_0() -> bool:
    """Under torchrun (RANK set) only rank 0 decides about and writes into the run folder; trainer.runtime.distributed says
    the same once torch is loaded."""
    return os.environ.get("RANK", "0") == "0"


# What a new run's folder may already hold: earlier attempts set aside, and Hydra's record of a sweep (the folder of a
# sweep's only job, when that job has no overrides, is the sweep's own folder).
SET_ASIDE = "set_aside"
FRESH = (SET_ASIDE, "multirun.yaml")


def refuse_another_run(folder: Path, mode: str, overrides: Sequence[str] | None = None) -> None:
    if any((folder / "checkpoints").glob("*.pt")) and mode == "train":
        raise UserError(
            f"{folder} already holds a run's checkpoints: resume it with ckpt_path={folder}/checkpoints/last.pt, "
            "or give this run its own folder (hydra.run.dir=...)"
        )
    if holds_any_run_file(folder) and overrides is not None and is_attempt_of(folder, overrides):
        set_aside(folder)  # nothing to resume, and nothing is deleted
        return
    if holds_any_run_file(folder):
        raise UserError(f"{folder} holds another run's files: a run with mode={mode} writes into a folder of its own, "
                        "so leave hydra.run.dir out or point it at a new folder")
    theirs = sorted(entry.name for entry in folder.iterdir() if entry.name not in FRESH) if folder.is_dir() else []
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
        raise UserError(f"{folder} holds files losslab did not write ({shown}): a run writes only into a folder of "
                        "its own, so point hydra.run.dir at a new or empty folder")


def is_attempt_of(folder: Path, overrides: Sequence[str]) -> bool:
    """Whether `folder` holds an earlier attempt of the same command (its recorded overrides) that failed, diverged
    or was stopped before it wrote any checkpoint: running the command again is how to go on."""
    record = folder / ".hydra" / "overrides.yaml"
    status = read_json(folder / "status.json").get("status")
    if not record.is_file() or status not in (FAILED, DIVERGED, STOPPED) or any((folder / "checkpoints").glob("*")):
        return False
    return [str(o) for o in yaml.safe_load(record.read_text()) or []] == [str(o) for o in overrides]


def set_aside(folder: Path) -> Path:
    """Move everything an earlier attempt left in `folder` into folder/set_aside/N/: its files are not mixed into
    the new attempt, and nothing is deleted (TensorBoard still shows the attempt, as a run of its own)."""
    attempts = folder / SET_ASIDE
    target = attempts / str(1 + (sum(1 for _ in attempts.iterdir()) if attempts.is_dir() else 0))
    target.mkdir(parents=True)
    for entry in folder.iterdir():
        if entry.name != SET_ASIDE:
            shutil.move(str(entry), str(target / entry.name))
    return target


RECORDS = (".hydra", "train.log")  # what the CLI writes into a run's folder before the run's own work


def discard_records(run_dir: str | Path, *, remove_folder: bool) -> bool:
    """Remove a run's records (.hydra/, train.log) from `run_dir` if it holds nothing else of the run: a run refused
    before any work leaves nothing behind. `remove_folder`: the folder was made for this run, so it goes too, and
    its parents while empty, up to the folder train started in. Returns whether the records were removed."""
    run_dir = Path(run_dir).absolute()
    if {entry.name for entry in run_dir.iterdir()} - {*RECORDS, *FRESH}:
        return False
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    (run_dir / "train.log").unlink(missing_ok=True)
    if remove_folder:
        remove_empty_folders(run_dir)
    return True


def remove_empty_folders(folder: Path) -> None:
    """`folder` and its parents while they are empty, up to the folder train started in (never that one, nor
    anything outside it): what a refused run or sweep had claimed (outputs/DATE/TIME)."""
    for each in (folder, *folder.parents):
        if each == Path.cwd() or not each.is_relative_to(Path.cwd()):
            break
        try:
            each.rmdir()  # only an empty folder: one another run has just claimed a name in stays
        except OSError:
            break


def as_system_error(error: Exception, run_dir: str | Path) -> Exception:
    """A full disk (or quota, or file size limit) met anywhere while the run writes, as one sentence naming the file;
    any other error as it is."""
    if isinstance(error, OSError) and error.errno in NO_SPACE:
        return cannot_make(error.filename or run_dir, error, key="hydra.run.dir")
    return error


def check_writable(folder: str | Path) -> None:
    """Create `folder` and write a file in it now, so an unwritable output folder is one sentence before any
    training, not a traceback after an epoch of work."""
    folder = make_folder(folder, key="hydra.run.dir")
    probe = folder / f".write-test-{os.getpid()}"  # one per process: torchrun's ranks probe the same folder
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise cannot_make(folder, error, key="hydra.run.dir") from None


def write_hydra_record(run_dir: str | Path, task_cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """.hydra/config.yaml, hydra.yaml and overrides.yaml, as Hydra writes them (conf/config.yaml turns Hydra's own
    writing off, so that a run refused for a folder never touches it): the composed config, Hydra's, and the
    command line's overrides, which `ckpt_path=` resumes and the sweep summary read."""
    folder = Path(run_dir) / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    for name, node in (("config.yaml", task_cfg), ("hydra.yaml", OmegaConf.create({"hydra": hydra_cfg})),
                       ("overrides.yaml", hydra_cfg.overrides.task)):
        (folder / name).write_text(OmegaConf.to_yaml(node))


def write_json(data: object, path: str | Path) -> None:
    """Write `data` as JSON atomically (a temporary file renamed over `path`): a full disk or a signal leaves the
    earlier file or none, never half of one; a system error is one sentence naming the file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as error:
        raise cannot_make(path, error, key="hydra.run.dir") from None
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: str | Path) -> dict[str, object]:
    """A JSON file's content; {} when the file does not exist.

    Raises:
        UserError: the file is not a JSON object losslab wrote (a user's own status.json, a half-written copy).
    """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        content = None
    if not isinstance(content, dict):
        raise UserError(f"{path} is not a file losslab wrote (it holds no JSON object): this folder is not a run of "
                        "losslab's, so point hydra.run.dir or hydra.sweep.dir at a new folder")
    return content


# What status.json says of a run, and the sweep summary of a job: it finished; an error stopped it (FAILED); its loss
# or weights stopped being finite numbers (DIVERGED); a signal stopped it, resumably (STOPPED). A folder without
# status.json is UNFINISHED (still running, or its process died); a planned job without a folder is NOT_STARTED.
DONE, FAILED, DIVERGED, STOPPED, UNFINISHED, NOT_STARTED = (
    "done", "failed", "diverged", "stopped", "unfinished", "not started")
STATUSES = (DONE, FAILED, DIVERGED, STOPPED, UNFINISHED, NOT_STARTED)


def write_status(run_dir: str | Path, wall_time_s: float, error: BaseException | None = None, *,
                 details: Mapping[str, object] | None = None) -> None:
    """status.json: DONE (with `details`: the epoch early stopping ended the run at), or the error's `status`
    (FAILED unless it says otherwise) with its first line and its `details` (a divergence's epoch and learning rate);
    the sweep summary reads it for every job."""
    write_json({"status": DONE if error is None else getattr(error, "status", FAILED),
                "wall_time_s": round(wall_time_s, 3),
                "error": None if error is None else first_line(error),
                "error_type": None if error is None else type(error).__name__,
                **(details or {}), **getattr(error, "details", {})}, Path(run_dir) / "status.json")
