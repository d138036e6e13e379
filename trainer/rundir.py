"""Run folders: claiming a unique one, which folder a run writes into, and the records a run leaves there
(status.json, metrics.json). A folder that holds another run's files is never written into by accident.
"""
import json
import os
from pathlib import Path

from omegaconf import OmegaConf

from trainer.errors import UserError, first_line


def claim_dir(base):
    """Create and return `base`, or `base_2`, `base_3`, ... if it exists: two runs or sweeps started in the
    same second get separate folders. os.mkdir is atomic, so two processes cannot claim the same name.
    Under torchrun no rank claims: every rank takes `base` as it is, built from rank 0's start time (shared
    through LOSSLAB_RUN_TIME by trainer.distributed), so all ranks write to one run dir; a claim could race
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


def training_dir(cfg, new_dir):
    """Where a training run writes: a resumed run continues in its checkpoint's run folder (so the same TensorBoard
    run); any other run, and the resume of a loose checkpoint, in the new folder Hydra made for it."""
    if cfg.mode == "train" and cfg.ckpt_path and Path(cfg.ckpt_path).is_file():
        return home_of(cfg.ckpt_path) or Path(new_dir)
    return Path(new_dir)


def refuse_to_overwrite(run_dir):
    if any((Path(run_dir) / "checkpoints").glob("*.pt")):
        raise UserError(
            f"{run_dir} already holds a run's checkpoints: resume it with ckpt_path={run_dir}/checkpoints/last.pt, "
            "or give this run its own folder (hydra.run.dir=...)"
        )


def write_json(data, path):
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_status(run_dir, wall_time_s, error=None):
    """status.json: done, or failed (interrupted, for a stop by a signal) with the error's first line; the sweep
    summary reads it for every job."""
    write_json({"status": "done" if error is None else getattr(error, "status", "failed"),
                "wall_time_s": round(wall_time_s, 3),
                "error": None if error is None else first_line(error),
                "error_type": None if error is None else type(error).__name__}, Path(run_dir) / "status.json")
