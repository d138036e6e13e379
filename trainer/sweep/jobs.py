"""A sweep's jobs as its folder holds them: each job folder's record (.hydra/, status.json, metrics.json), the jobs
Hydra's grid plans that never started, and what differs between jobs (their labels, their seeds). Only files are
read: the same code serves a finished, failed or interrupted sweep, and a sweep being finished."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from trainer.config import override_key
from trainer.run.rundir import DONE, NOT_STARTED, SET_ASIDE, UNFINISHED, read_json

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence

FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # every job reads the sweep's records: libyaml's speed


@dataclass
class Job:
    name: str                        # the job dir, relative to the sweep dir
    num: int
    overrides: list
    status: str                      # one of trainer.run.rundir's statuses (DONE, FAILED, ..., NOT_STARTED)
    error: str = None
    wall_time_s: float = None
    metrics: dict = field(default_factory=dict)


UNNUMBERED = 1 << 30  # a job folder whose record has no job number: listed after the numbered ones


def job_num(job_dir: Path) -> int | None:
    """The job number Hydra recorded in a job folder's .hydra/hydra.yaml; None if it has none."""
    record = job_dir / ".hydra" / "hydra.yaml"
    if not record.is_file():
        return None
    num = ((yaml.load(record.read_text(), Loader=FAST_LOADER) or {}).get("hydra") or {}).get("job", {}).get("num")
    return num if isinstance(num, int) else None


def read_job(job_dir: Path, sweep_dir: Path) -> Job:
    status = read_json(job_dir / "status.json")
    num = job_num(job_dir)
    return Job(name=str(job_dir.relative_to(sweep_dir)), num=UNNUMBERED if num is None else num,
               overrides=[str(o) for o in yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []],
               status=status.get("status", UNFINISHED), error=status.get("error"),
               wall_time_s=status.get("wall_time_s"), metrics=read_json(job_dir / "metrics.json"))


def read_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every job of the sweep in launch order: the job dirs (folders with .hydra/overrides.yaml; the attempts a
    resumed sweep set aside are not jobs), then the jobs its command plans that never started."""
    sweep_dir = Path(sweep_dir)
    jobs = [read_job(d, sweep_dir) for d in job_dirs(sweep_dir)]
    started = {job.num for job in jobs}
    jobs += [Job(name=",".join(overrides), num=num, overrides=overrides, status=NOT_STARTED)
             for num, overrides in enumerate(planned_jobs(sweep_dir) or []) if num not in started]
    return sorted(jobs, key=lambda job: (job.num, job.name))


def job_dirs(sweep_dir: Path) -> set:
    """The job folders of a sweep: those with .hydra/overrides.yaml, the attempts a resumed sweep set aside left
    out. The sweep dir itself is one when a job has no overrides (hydra.sweep.subdir is then empty)."""
    return {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")
            if SET_ASIDE not in p.relative_to(sweep_dir).parts}


def planned_jobs(sweep_dir: str | Path) -> list | None:
    """The overrides of every job the sweep in `sweep_dir` plans, in launch order, from Hydra's record of its command
    (multirun.yaml); None for a sweeper that chooses its jobs as it goes (Optuna) or without a record."""
    record = Path(sweep_dir) / "multirun.yaml"
    return grid_jobs(((yaml.safe_load(record.read_text()) if record.is_file() else None) or {}).get("hydra") or {})


def grid_jobs(hydra_cfg: dict) -> list | None:
    """The overrides of every job a sweep's Hydra config (a plain dict: its sweeper and overrides) plans, in launch
    order; None for a sweeper that chooses its jobs as it goes (Optuna)."""
    sweeper = hydra_cfg.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # how Hydra itself expands the grid
    from hydra.core.override_parser.overrides_parser import OverridesParser

    command = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    command += [str(o) for o in (hydra_cfg.get("overrides") or {}).get("task") or []]
    parsed = OverridesParser.create().parse_overrides(command)
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def common_overrides(jobs: Sequence[Job]) -> list[str]:
    """Overrides every job has with the same value; the rest is what the sweep varies."""
    if len(jobs) < 2:
        return []
    shared = set(jobs[0].overrides)
    for job in jobs[1:]:
        shared &= set(job.overrides)
    return [o for o in jobs[0].overrides if o in shared]


def label(job: Job, common: Collection[str], drop_keys: Collection[str] = ()) -> str:
    varying = [o for o in job.overrides if o not in common and override_key(o) not in drop_keys]
    return " ".join(varying) or "(defaults)"


def seeds_vary(jobs: Iterable[Job]) -> bool:
    seeds = {o for job in jobs for o in job.overrides if override_key(o) == "seed"}
    return len(seeds) > 1


def finished(job: Job) -> bool:
    """A job whose metrics.json is final: only these enter a seed group's statistics."""
    return job.status == DONE


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def seeds_of(jobs: Iterable[Job]) -> list[str]:
    return [o.split("=", 1)[1] for job in jobs for o in job.overrides if override_key(o) == "seed"]


def seed_of(job: Job) -> str | None:
    """The job's `seed` override as written ("3"), None without one."""
    return next((o.split("=", 1)[1] for o in job.overrides if override_key(o) == "seed"), None)
