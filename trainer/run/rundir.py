"""Run folders: claiming a unique one, which folder a run writes into, and the records a run leaves there
(status.json, metrics.json). A folder that holds another run's files is never written into by accident.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from trainer.errors import UserError, first_line


def claim_dir(base):
    """Create and return `base`, or `base_2`, `base_3`, ... if it exists: two runs or sweeps started in the
    same second get separate folders. os.mkdir is atomic, so two processes cannot claim the same name.
    Under torchrun no rank claims: every rank takes `base` as it is, built from rank 0's start time (shared
    through LOSSLAB_RUN_TIME by trainer.runtime.distributed), so all ranks write to one run dir; a claim could race
    with another rank's Hydra creating the same folder."""
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    if "LOSSLAB_RUN_TIME" in os.environ:
        return base
    for attempt in range(1, 10_000):
        candidate = base if attempt == 1 else f"{base}_{attempt}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"{base}: no free folder name left")


def register_resolvers():
    """`${unique_dir:...}` in conf/config.yaml's hydra.run.dir and hydra.sweep.dir; the CLI calls this before Hydra
    composes. use_cache: the sweep dir is resolved once per sweep; Hydra copies the cache into every job's config
    (also when a launcher pickles the config to another process), so all jobs agree on the folder it claimed."""
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", claim_dir, use_cache=True)


def holds_a_run(folder):
    """Whether a folder holds a run's record: Hydra's .hydra/ or a TensorBoard events file."""
    folder = Path(folder)
    return (folder / ".hydra").is_dir() or any(folder.glob("events.out.tfevents.*"))


def home_of(ckpt_path):
    """The run folder a checkpoint belongs to: RUN for RUN/checkpoints/NAME.pt when RUN holds a run's record. A
    checkpoint anywhere else is loose and has no home."""
    path = Path(ckpt_path).resolve()
    run = path.parent.parent
    return run if path.parent.name == "checkpoints" and holds_a_run(run) else None


RUN_FILES = ("metrics.json", "status.json")  # besides .hydra/, checkpoints and TensorBoard events


def holds_any_run_file(folder):
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

    def begin(self):
        if self.continuing and not self.begun and self.on_begin is not None:
            self.on_begin()
        self.begun = True

    @property
    def ours(self):
        return not self.continuing or self.begun


def place(cfg, new_dir):
    """Where a run writes: a resumed run continues in the run folder its checkpoint belongs to (the same TensorBoard
    run); any other run, and the resume of a loose checkpoint, in the new folder Hydra made for it, which must not
    hold another run's files (hydra.run.dir can point anywhere)."""
    if cfg.mode == "train" and cfg.ckpt_path and Path(cfg.ckpt_path).is_file():
        home = home_of(cfg.ckpt_path)
        if home is not None:
            return Place(home, continuing=True)
    if is_rank_0():  # the others follow its decision (and would see the files it has begun to write)
        refuse_another_run(Path(new_dir), cfg.mode)
    return Place(Path(new_dir))


def is_rank_0():
    """Under torchrun (RANK set) only rank 0 decides about and writes into the run folder; trainer.runtime.distributed says
    the same once torch is loaded."""
    return os.environ.get("RANK", "0") == "0"


def refuse_another_run(folder, mode):
    if any((folder / "checkpoints").glob("*.pt")) and mode == "train":
        raise UserError(
            f"{folder} already holds a run's checkpoints: resume it with ckpt_path={folder}/checkpoints/last.pt, "
            "or give this run its own folder (hydra.run.dir=...)"
        )
    if holds_any_run_file(folder):
        raise UserError(f"{folder} holds another run's files: a run with mode={mode} writes into a folder of its own, "
                        "so leave hydra.run.dir out or point it at a new folder")


def check_writable(folder):
    """Create `folder` and write a file in it now, so an unwritable output folder is one sentence before any
    training, not a traceback after an epoch of work."""
    folder = Path(folder)
    probe = folder / f".write-test-{os.getpid()}"  # one per process: torchrun's ranks probe the same folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"{folder} cannot be written ({error.strerror or first_line(error)}): point hydra.run.dir "
                        "at a folder you can write to") from None


def write_hydra_record(run_dir, task_cfg, hydra_cfg):
    """.hydra/config.yaml, hydra.yaml and overrides.yaml, as Hydra writes them (conf/config.yaml turns Hydra's own
    writing off, so that a run refused for a folder never touches it): the composed config, Hydra's, and the
    command line's overrides, which `ckpt_path=` resumes and the sweep summary read."""
    folder = Path(run_dir) / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    for name, node in (("config.yaml", task_cfg), ("hydra.yaml", OmegaConf.create({"hydra": hydra_cfg})),
                       ("overrides.yaml", hydra_cfg.overrides.task)):
        (folder / name).write_text(OmegaConf.to_yaml(node))


def write_json(data, path):
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path):
    """A JSON file's content; {} when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


# What status.json says of a run, and the sweep summary of a job: it finished; an error stopped it (FAILED); its loss
# or weights stopped being finite numbers (DIVERGED); a signal stopped it, resumably (STOPPED). A folder without
# status.json is UNFINISHED (still running, or its process died); a planned job without a folder is NOT_STARTED.
DONE, FAILED, DIVERGED, STOPPED, UNFINISHED, NOT_STARTED = (
    "done", "failed", "diverged", "stopped", "unfinished", "not started")
STATUSES = (DONE, FAILED, DIVERGED, STOPPED, UNFINISHED, NOT_STARTED)


def write_status(run_dir, wall_time_s, error=None, *, details=None):
    """status.json: DONE (with `details`: the epoch early stopping ended the run at), or the error's `status`
    (FAILED unless it says otherwise) with its first line and its `details` (a divergence's epoch and learning rate);
    the sweep summary reads it for every job."""
    write_json({"status": DONE if error is None else getattr(error, "status", FAILED),
                "wall_time_s": round(wall_time_s, 3),
                "error": None if error is None else first_line(error),
                "error_type": None if error is None else type(error).__name__,
                **(details or {}), **getattr(error, "details", {})}, Path(run_dir) / "status.json")
