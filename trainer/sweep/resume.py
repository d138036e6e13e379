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
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from omegaconf import OmegaConf

from trainer.config import check_recorded_override, override_key
from trainer.errors import UserError
from trainer.run.rundir import DONE, SET_ASIDE, STOPPED, UNFINISHED, holds_any_run_file, read_json, set_aside
from trainer.sweep.jobs import grid_jobs, job_dirs

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence

    from omegaconf import DictConfig

RESUMABLE = ("trainer.",)  # overrides a resume may change (as for a single run); the others identify a job
SHORTCUT = "resume_sweep"  # `train resume_sweep=DIR [overrides]`


@dataclass
class JobPlan:
    """What a job of a re-run sweep does: "new" (no earlier folder), "keep", "resume" or "again"."""
    action: str
    run_dir: Path
    cfg: object
    metrics: dict = None  # "keep": the job's own results


def plan_job(cfg: DictConfig, *, new_dir: str | Path, sweep_dir: str | Path, num: int, overrides: Sequence[str],
             ignored: tuple[str, ...] = ()) -> JobPlan:
    """The plan for job `num` of the sweep in `sweep_dir`, whose Hydra folder would be `new_dir`. `ignored`: the
    override keys Hydra leaves out of folder names (they change speed, not results)."""
    new_dir = Path(new_dir)
    ignored = (*RESUMABLE, *ignored)
    folder = earlier_folder(Path(sweep_dir), job_identity(overrides, ignored), new_dir, ignored=ignored)
    if folder is None:
        return JobPlan("new", new_dir, cfg)
    check_same_job(folder, num, overrides, ignored=ignored)
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


def earlier_folder(sweep_dir: Path, identity: tuple[str, ...], new_dir: Path, *,
                   ignored: tuple[str, ...]) -> Path | None:
    """The folder an earlier run of this sweep gave this job: the one Hydra names the same, else the one whose
    recorded overrides make the same job (`identity`, job_identity's: a grid grown since numbers its jobs anew, and
    trainer.* keys given on resume change the folder's name, not the job); None for a job never started."""
    if holds_any_run_file(new_dir):
        return check_inside(new_dir, sweep_dir)
    for record in sorted(sweep_dir.glob("**/.hydra/hydra.yaml")):
        folder = record.parent.parent
        if SET_ASIDE not in folder.relative_to(sweep_dir).parts and job_identity(
                stored_overrides(folder), ignored) == identity:
            return check_inside(folder, sweep_dir)
    return None


def check_inside(folder: Path, sweep_dir: Path) -> Path:
    """A job folder of the sweep, really inside it: a link (or a folder reached through one) that leads elsewhere
    would make the job resume, set aside or overwrite a run that is not the sweep's (someone else's sweep folder,
    or the user's own run).

    Raises:
        UserError: the folder is a link, or resolves outside the sweep folder.
    """
    inside = folder.resolve().is_relative_to(sweep_dir.resolve())
    if folder.is_symlink() or not inside:
        raise UserError(f"{folder} is a link to {folder.resolve()}, outside the sweep folder {sweep_dir}: a sweep "
                        "finishes only the job folders it holds, so remove the link (or copy the folder in)")
    return folder


def job_identity(overrides: Iterable[object], ignored: tuple[str, ...]) -> tuple[str, ...]:
    """What makes a job that job: its overrides, less those a resume may change (`ignored`: keys and prefixes)."""
    return tuple(sorted(str(o) for o in overrides if not override_key(str(o)).startswith(ignored)
                        and override_key(str(o)) not in ignored))


def stored_overrides(folder: Path) -> list[str]:
    record = folder / ".hydra" / "overrides.yaml"
    return [str(o) for o in yaml.safe_load(record.read_text()) or []] if record.is_file() else []


def check_same_job(folder: Path, num: int, overrides: Iterable[object], *, ignored: tuple[str, ...]) -> None:
    theirs, ours = job_identity(stored_overrides(folder), ignored), job_identity(overrides, ignored)
    if theirs != ours:
        raise UserError(f"{folder} holds job {num} of another sweep ({' '.join(theirs) or 'no overrides'}, not "
                        f"{' '.join(ours) or 'no overrides'}): finish a sweep with its own overrides "
                        f"({SHORTCUT}={folder.parent}), or give this sweep a new hydra.sweep.dir")


def check_same_sweep(sweep_dir: str | Path, hydra_cfg: dict, *, ignored: tuple[str, ...] = ()) -> None:
    """Before a sweep writes anything into `sweep_dir` (Hydra's multirun.yaml, job folders, the summary): a folder
    that holds files must hold an earlier run of this same sweep, every job folder there a job this sweep plans
    (`hydra_cfg`: the sweep's Hydra config as a plain dict; `ignored`: override keys that do not make a job),
    so that finishing a sweep works and starting another over it is refused with every file left as it was.

    Raises:
        UserError: the folder holds another sweep, a single run, or files losslab did not write.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir() or not any(sweep_dir.iterdir()):
        return
    if not (sweep_dir / "multirun.yaml").is_file():
        raise UserError(f"{sweep_dir} holds files but no sweep (no multirun.yaml): a sweep writes into a folder of its "
                        "own, so leave hydra.sweep.dir out or point it at a new folder")
    ignored = (*RESUMABLE, *ignored)
    planned, what = grid_jobs(hydra_cfg), "job"
    if planned is None:  # a sweeper that picks its jobs as it goes (Optuna): the sweep's command must be the same
        what = "command"
        theirs = [job_identity(recorded_overrides(sweep_dir / "multirun.yaml").get("task") or [], ignored)]
        ours = {job_identity((hydra_cfg.get("overrides") or {}).get("task") or [], ignored)}
    else:
        theirs = [job_identity(stored_overrides(folder), ignored) for folder in sorted(job_dirs(sweep_dir))]
        ours = {job_identity(job, ignored) for job in planned}
    stray = [job for job in theirs if job not in ours]
    if stray:
        raise UserError(f"{sweep_dir} holds another sweep (its {what} {' '.join(stray[0]) or 'with no overrides'} is "
                        f"not one of this command's): finish that sweep with `train {SHORTCUT}={sweep_dir}`, or give "
                        "this one a new hydra.sweep.dir")


# --- the shortcut: `train resume_sweep=DIR` ---------------------------------------------------------------------

# Hydra overrides of the recorded command that are carried over: the launcher, and its plain numeric settings.
# Anything else (a launcher's `setup` commands, callbacks, ...) would let a copied sweep folder run code.
LAUNCHER_GROUP, LAUNCHER_KEYS = "hydra/launcher", "hydra.launcher."


def expand_command(args: Sequence[str]) -> list[str]:
    """The command line to run for `args`: unchanged, or for `resume_sweep=DIR [OVERRIDES]` the sweep's own
    overrides read from DIR/multirun.yaml, with OVERRIDES replacing those of the same key, into hydra.sweep.dir=DIR."""
    asked = [a for a in args if a.startswith(f"{SHORTCUT}=")]
    if not asked:
        return list(args)
    sweep_dir = Path(asked[-1].split("=", 1)[1])
    extra = [a for a in args if a not in asked and a not in ("-m", "--multirun")]
    if any(override_key(a) == "hydra.sweep.dir" for a in extra):
        raise UserError(f"{SHORTCUT}={sweep_dir} already says where the sweep is: leave hydra.sweep.dir out")
    kept, launcher = recorded_command(sweep_dir, replaced={override_key(a) for a in extra})
    return ["--multirun", *kept, *launcher, *extra, f"hydra.sweep.dir={sweep_dir}"]


def recorded_command(sweep_dir: str | Path, replaced: Collection[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(task overrides, launcher overrides) of the sweep recorded in sweep_dir/multirun.yaml, without the task
    overrides of the keys in `replaced` (the command line sets them). The record is data: a task override outside the
    allow-list of trainer/config/stored.py (keys and group options of losslab's conf/, plain values) is refused
    before any job starts, and Hydra overrides other than the launcher's are not carried over."""
    record = Path(sweep_dir) / "multirun.yaml"
    if not record.is_file():
        raise UserError(f"{SHORTCUT}={sweep_dir} is not a sweep folder (it has no multirun.yaml, Hydra's record of "
                        "a sweep): point it at the folder a `train -m ...` sweep wrote")
    overrides = recorded_overrides(record)
    task = [str(o) for o in overrides.get("task") or [] if override_key(str(o)) not in replaced]
    for override in task:
        check_recorded_override(override, source=str(record))
    launcher = [str(o) for o in overrides.get("hydra") or [] if carried_over(str(o))]
    return task, launcher


def recorded_overrides(record: Path) -> dict:
    """hydra.overrides of a multirun.yaml: {"task": [...], "hydra": [...]}."""
    try:
        overrides = yaml.safe_load(record.read_text())["hydra"]["overrides"]
        if isinstance(overrides, dict) and all(isinstance(overrides.get(k) or [], list) for k in ("task", "hydra")):
            return overrides
    except (yaml.YAMLError, KeyError, TypeError):
        pass
    raise UserError(f"{record} is not a record of a sweep's command (it lacks hydra.overrides.task, a list): point "
                    f"{SHORTCUT} at the folder a `train -m ...` sweep wrote")


def carried_over(override: str) -> bool:
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
