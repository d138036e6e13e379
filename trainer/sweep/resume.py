"""Finishing a sweep in place. Run a sweep's command again with hydra.sweep.dir=DIR, or `train resume_sweep=DIR`
(which rebuilds that command from DIR/multirun.yaml, Hydra's record of the sweep), and every job looks at its own
folder before it starts:

- done: kept as it is, not trained again (nothing in its folder is written);
- stopped or unfinished, with checkpoints/last.pt: resumed from it, exactly as a single run resumes;
- failed, diverged, or without a checkpoint: its old files are set aside in set_aside/N/ and it runs again.

A job is found by its folder name (its overrides) or, when the command adds overrides a resume may change (e.g.
trainer.epochs=30, which renames the folders Hydra would make), by its job number; either way its recorded overrides
must be the same job's, or it is refused in one sentence.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from trainer.config import SPECIAL_KEYS, override_key
from trainer.errors import UserError
from trainer.run.rundir import DONE, STOPPED, UNFINISHED, holds_any_run_file, read_json
from trainer.sweep.jobs import SET_ASIDE, job_num

RESUMABLE = ("trainer.",)  # overrides a resume may change (as for a single run); the others identify a job
SHORTCUT = "resume_sweep"  # `train resume_sweep=DIR [overrides]`


@dataclass
class JobPlan:
    """What a job of a re-run sweep does: "new" (no earlier folder), "keep", "resume" or "again"."""
    action: str
    run_dir: Path
    cfg: object
    metrics: dict = None  # "keep": the job's own results


def plan_job(cfg, *, new_dir, sweep_dir, num, overrides, ignored=()):
    """The plan for job `num` of the sweep in `sweep_dir`, whose Hydra folder would be `new_dir`. `ignored`: the
    override keys Hydra leaves out of folder names (they change speed, not results)."""
    new_dir = Path(new_dir)
    folder = earlier_folder(Path(sweep_dir), num, new_dir)
    if folder is None:
        return JobPlan("new", new_dir, cfg)
    check_same_job(folder, num, overrides, ignored=(*RESUMABLE, *ignored))
    if folder != new_dir and new_dir.is_dir() and not any(new_dir.iterdir()):
        new_dir.rmdir()  # the empty folder Hydra made under the new name
    status = read_json(folder / "status.json").get("status", UNFINISHED)
    metrics = read_json(folder / "metrics.json")
    last = folder / "checkpoints" / "last.pt"
    if status == DONE and metrics.get("epochs") == cfg.trainer.epochs:
        return JobPlan("keep", folder, cfg, metrics)
    if status in (DONE, STOPPED, UNFINISHED) and last.is_file():  # a done job given more epochs resumes too
        resumed = OmegaConf.create(OmegaConf.to_container(cfg))
        resumed.ckpt_path = str(last)
        return JobPlan("resume", folder, resumed)
    set_aside(folder)
    return JobPlan("again", folder, cfg)


def earlier_folder(sweep_dir, num, new_dir):
    """The folder an earlier run of this sweep gave job `num`: the one Hydra names the same, else the one whose
    record says it was job `num`; None for a job never started."""
    if holds_any_run_file(new_dir):
        return new_dir
    for record in sweep_dir.glob("**/.hydra/hydra.yaml"):
        folder = record.parent.parent
        if SET_ASIDE not in folder.relative_to(sweep_dir).parts and job_num(folder) == num:
            return folder
    return None


def check_same_job(folder, num, overrides, *, ignored):
    record = folder / ".hydra" / "overrides.yaml"
    stored = [str(o) for o in yaml.safe_load(record.read_text()) or []] if record.is_file() else []
    identity = lambda items: sorted(o for o in items if not override_key(o).startswith(ignored)
                                    and override_key(o) not in ignored)
    if identity(stored) != identity(overrides):
        theirs, ours = identity(stored), identity(overrides)
        raise UserError(f"{folder} holds job {num} of another sweep ({' '.join(theirs) or 'no overrides'}, not "
                        f"{' '.join(ours) or 'no overrides'}): finish a sweep with its own overrides "
                        f"({SHORTCUT}={folder.parent}), or give this sweep a new hydra.sweep.dir")


def set_aside(folder):
    """Move everything a failed attempt left in `folder` into folder/set_aside/N/: its checkpoints are not mixed
    into the new attempt, and nothing is deleted (TensorBoard still shows the attempt, as a run of its own)."""
    attempts = folder / SET_ASIDE
    target = attempts / str(1 + (sum(1 for _ in attempts.iterdir()) if attempts.is_dir() else 0))
    target.mkdir(parents=True)
    for entry in folder.iterdir():
        if entry.name != SET_ASIDE:
            shutil.move(str(entry), str(target / entry.name))
    return target


# --- the shortcut: `train resume_sweep=DIR` ---------------------------------------------------------------------

# Hydra overrides of the recorded command that are carried over: the launcher, and its plain numeric settings.
# Anything else (a launcher's `setup` commands, callbacks, ...) would let a copied sweep folder run code.
LAUNCHER_GROUP, LAUNCHER_KEYS = "hydra/launcher", "hydra.launcher."


def expand_command(args):
    """The command line to run for `args`: unchanged, or for `resume_sweep=DIR [OVERRIDES]` the sweep's own
    overrides read from DIR/multirun.yaml, with OVERRIDES replacing those of the same key, into hydra.sweep.dir=DIR."""
    asked = [a for a in args if a.startswith(f"{SHORTCUT}=")]
    if not asked:
        return list(args)
    sweep_dir = Path(asked[-1].split("=", 1)[1])
    extra = [a for a in args if a not in asked and a not in ("-m", "--multirun")]
    if any(override_key(a) == "hydra.sweep.dir" for a in extra):
        raise UserError(f"{SHORTCUT}={sweep_dir} already says where the sweep is: leave hydra.sweep.dir out")
    task, launcher = recorded_command(sweep_dir)
    replaced = {override_key(a) for a in extra}
    kept = [o for o in task if override_key(o) not in replaced]
    return ["--multirun", *kept, *launcher, *extra, f"hydra.sweep.dir={sweep_dir}"]


def recorded_command(sweep_dir):
    """(task overrides, launcher overrides) of the sweep recorded in sweep_dir/multirun.yaml. The record is data:
    an override naming code (a _target_ or another instantiate key) or an interpolation is refused, and Hydra
    overrides other than the launcher's are not carried over."""
    record = Path(sweep_dir) / "multirun.yaml"
    if not record.is_file():
        raise UserError(f"{SHORTCUT}={sweep_dir} is not a sweep folder (it has no multirun.yaml, Hydra's record of "
                        "a sweep): point it at the folder a `train -m ...` sweep wrote")
    overrides = ((yaml.safe_load(record.read_text()) or {}).get("hydra") or {}).get("overrides") or {}
    task = [str(o) for o in overrides.get("task") or []]
    for override in task:
        key = override_key(override)
        if key.split(".")[-1] in SPECIAL_KEYS or "${" in override or key.startswith("hydra"):
            raise UserError(f"{record} records the override {override}, which a sweep's record may not carry (it "
                            "could run code): give the overrides on the command line if you trust them")
    launcher = [str(o) for o in overrides.get("hydra") or [] if carried_over(str(o))]
    return task, launcher


def carried_over(override):
    key, _, value = override.partition("=")
    if key == LAUNCHER_GROUP:
        return value.replace("_", "").isalnum()
    if key.startswith(LAUNCHER_KEYS):
        try:
            float(value)
        except ValueError:
            return False
        return key.count(".") == 2
    return False
