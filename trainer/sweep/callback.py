"""Putting a sweep's summary together: `summarize` writes every file into the sweep folder, and `SummaryCallback`
(registered in conf/config.yaml under hydra.callbacks) calls it at the end of every multirun."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from trainer.config import override_key
from trainer.errors import Exit, UserError, refuse
from trainer.run.rundir import DIVERGED, FAILED, cannot_make, folder_of, make_folder, remove_empty_folders
from trainer.sweep.resume import SHORTCUT, check_same_sweep

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from trainer.sweep.jobs import Job

CURVES, RELIABILITY = "curves.png", "reliability_overlay.png"  # the pictures' file names in the sweep folder
FILES = ("summary.md", "summary.csv", "summary_groups.csv", CURVES, RELIABILITY)


def summarize(sweep_dir: str | Path, *, target: float | None = None) -> tuple[str, list[Job]]:
    """Write summary.md, summary.csv, summary_groups.csv, curves.png and reliability_overlay.png into the sweep
    dir; returns (markdown text, jobs). `target`: sweep.target, by default the one the sweep ran with."""
    # the summary's modules load here, at a sweep's end: every job of the sweep, and a single run, go without them
    from trainer.sweep.pictures import plot_curves, plot_reliability
    from trainer.sweep.report import groups_csv, summary_csv, summary_markdown
    from trainer.sweep.summary import read_summary

    summary = read_summary(sweep_dir, target=target)
    pictures = []
    for name, plot in ((CURVES, plot_curves), (RELIABILITY, plot_reliability)):
        if plot(summary, summary.sweep_dir / name):
            pictures.append(name)
        else:  # a stale picture would show jobs the table does not
            (summary.sweep_dir / name).unlink(missing_ok=True)
    text = summary_markdown(summary, pictures)
    (summary.sweep_dir / "summary.md").write_text(text)
    (summary.sweep_dir / "summary.csv").write_text(summary_csv(summary))
    (summary.sweep_dir / "summary_groups.csv").write_text(groups_csv(summary))
    return text, summary.jobs


def summarize_and_show(sweep_dir: str | Path, *, target: float | None = None) -> list[Job]:
    """summarize(), then print the summary and the files written; returns the jobs."""
    text, jobs = summarize(sweep_dir, target=target)
    written = [name for name in FILES if (Path(sweep_dir) / name).is_file()]
    print(f"\n{text}\nwritten in {sweep_dir}: {', '.join(written)}", flush=True)
    return jobs


def stop_sweep(sweep_dir: str | Path, *, why: str, target: float | None = None) -> None:
    """A sweep stopped before its end (a signal, sweep.fail_fast): the summary of the jobs so far, the others listed
    as not started, and how to finish it."""
    summarize_and_show(sweep_dir, target=target)
    print(f"{why}: finish the sweep with `train {SHORTCUT}={sweep_dir}`", file=sys.stderr, flush=True)


NEW_SWEEPS: list[Path] = []  # sweep folders this process made under outputs/ (discard_unstarted)


def discard_unstarted() -> None:
    """A new sweep that stopped before any job began (a misspelt key in its grid: Hydra cannot compose a job's
    config) leaves nothing behind: its multirun.yaml goes, and the folders made for it (outputs/multirun/DATE/TIME).
    A folder named with hydra.sweep.dir stays, as a run's hydra.run.dir does."""
    for sweep_dir in NEW_SWEEPS:
        if sweep_dir.is_dir() and {entry.name for entry in sweep_dir.iterdir()} <= {"multirun.yaml"}:
            (sweep_dir / "multirun.yaml").unlink(missing_ok=True)
            remove_empty_folders(sweep_dir)


class SummaryCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks: at the end of every multirun, summarise the sweep and
    exit non-zero if a job failed or diverged (the jobs catch their own errors so the rest of the sweep runs; Hydra's
    main wrapper drops the sweep's return value, so this is the last code that sees the whole sweep)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        from trainer.sweep.summary import check_target

        # before any job runs and before Hydra writes multirun.yaml: a refusal leaves the folder as it was
        try:
            check_target(OmegaConf.select(config, "sweep.target"))
            sweep_dir = folder_of(config, "hydra.sweep.dir")
            check_same_sweep(sweep_dir, {"sweeper": OmegaConf.to_container(config.hydra.sweeper, resolve=True),
                                         "overrides": {"task": list(config.hydra.overrides.task)}},
                             ignored=tuple(config.hydra.job.config.override_dirname.exclude_keys))
            make_folder(sweep_dir, key="hydra.sweep.dir")
        except UserError as error:
            refuse(error)
        except OSError as error:  # a name too long even to look up
            refuse(cannot_make(sweep_dir, error, key="hydra.sweep.dir"))
        named = "hydra.sweep.dir" in {override_key(o) for o in config.hydra.overrides.hydra}
        if not (sweep_dir / "multirun.yaml").is_file() and not named:
            NEW_SWEEPS.append(sweep_dir.absolute())
        if (sweep_dir / "multirun.yaml").is_file():  # Hydra writes it after this: the folder holds an earlier run
            print(f"finishing the sweep in {sweep_dir}: done jobs are kept, stopped ones resume from their last.pt, "
                  "failed ones run again", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = summarize_and_show(sweep_dir, target=OmegaConf.select(config, "sweep.target"))
        bad = {status: sum(job.status == status for job in jobs) for status in (FAILED, DIVERGED)}
        if any(bad.values()):
            parts = [f"{n} {status}" for status, n in bad.items() if n]
            what = (f"{sum(bad.values())} of {len(jobs)} jobs did not finish ({', '.join(parts)})" if len(parts) > 1
                    else f"{sum(bad.values())} of {len(jobs)} jobs {next(s for s, n in bad.items() if n)}")
            raise Exit(f"error: {what}: see {sweep_dir / 'summary.md'}")  # status 1
