"""The `train` command: compose the config with Hydra, decide the run's folder before anything is written, run the
mode the config asks for, and turn user mistakes into one sentence.

Exit status: 0 done; 1 a sweep with failed or diverged jobs, or an error that is not the user's (a bug: its traceback is
printed); 2 a mistake the user can fix (a config value, a path, an unknown option, a refused folder); 3 mode=predict
wrote predictions.csv but skipped inputs it could not read (trainer/run/predict.py); 128 + the signal number (130
Ctrl-C, 143 SIGTERM) when a signal stopped the run.
"""
from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from trainer.config import as_typed, config_dir, misspelt_override, override_key, validate
from trainer.errors import Exit, UserError
from trainer.logs import RunLog, log
from trainer.metrics import ACC, STOPPED_EPOCH, TEST, recorded_monitor, result_key
from trainer.run import rundir
from trainer.run.interrupt import Interrupted, Stop, StopAtOnce
from trainer.sweep import resume as resume_sweep

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from omegaconf import DictConfig

# mode -> the function that runs it, imported when chosen so that `train --help` does not wait for torch
MODES = {"train": "trainer.run.train:train", "eval": "trainer.run.evaluation:evaluate_checkpoint",
         "lr_find": "trainer.run.lr_find:run_lr_find", "predict": "trainer.run.predict:predict"}
USER_MISTAKE, FAILED = 2, 1


def run_mode(cfg: DictConfig, place: rundir.Place, overrides: list[str]) -> dict[str, object]:
    """Check the config, then run its mode in `place`; returns the run's metrics."""
    validate(cfg, modes=MODES, overrides=overrides)
    module, function = MODES[cfg.mode].split(":")
    return getattr(importlib.import_module(module), function)(cfg, place, overrides=overrides)


def dispatch(cfg: DictConfig, new_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, object]:
    """What `train` does with a composed config, without Hydra's records: decide the folder, run the mode."""
    return run_mode(cfg, rundir.place(cfg, new_dir, list(overrides)), list(overrides))


@hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
def run(cfg: DictConfig) -> float | None:
    job = HydraConfig.get()
    try:
        return run_job(cfg, job)
    finally:
        if job.mode != RunMode.MULTIRUN:
            drop_unused_folder(job)


def drop_unused_folder(job: DictConfig) -> None:
    """The folder Hydra claimed for a single run (outputs/DATE/TIME), if the run left it empty: it continued in its
    checkpoint's own run folder (a resume), or was refused before writing anything. A folder the user named with
    hydra.run.dir stays."""
    claimed = Path(job.runtime.output_dir)
    named = "hydra.run.dir" in {override_key(o) for o in job.overrides.hydra}
    if not named and claimed.is_dir() and not any(claimed.iterdir()):
        rundir.remove_empty_folders(claimed)


def run_job(cfg: DictConfig, job: DictConfig) -> float | None:
    """One run (or sweep job) of `train`: its folder decided, its mode run, its records kept; see `run`."""
    overrides = list(job.overrides.task)
    in_sweep = job.mode == RunMode.MULTIRUN
    with StopAtOnce():  # a signal at any moment stops the run with a status (the epochs first finish their step)
        try:
            cfg, place = decide_place(cfg, job, overrides, in_sweep=in_sweep)
            records = None if place is None else Records(place, cfg, job, in_sweep=in_sweep)
        except UserError as refusal:  # the folder is another run's (or the user's): nothing is written into it
            return report(refusal, cfg, overrides, in_sweep=in_sweep)
        if place is None:
            return None  # a done job of a sweep being finished: kept as it is
        try:
            metrics = run_mode(cfg, place, overrides)
        except (Interrupted, Stop) as stop:
            stopped(stop, records, job, cfg, in_sweep=in_sweep)
        except Exception as error:
            error = rundir.as_system_error(error, place.run_dir)  # a full disk: one sentence naming the file
            records.close(error)
            return report(error, cfg, overrides, in_sweep=in_sweep)
    # a run early stopping ended is done, and says when it stopped
    records.close(details={key: metrics[key] for key in (STOPPED_EPOCH,) if key in (metrics or {})})
    # what a sweeper (e.g. Optuna) optimises: the run's best validation value
    return metrics.get(recorded_monitor(metrics).best_key, metrics.get(result_key(TEST, ACC)))


def stopped(stop: Interrupted | Stop, records: Records, job: DictConfig, cfg: DictConfig, *,
            in_sweep: bool) -> NoReturn:
    """A signal stopped the run (in the epochs: after a step, with last.pt saved; anywhere else: where it was): its
    status, one line on how to go on, exit 128 + the signal. Even in a sweep: the user (or the scheduler) wants the
    whole process to stop."""
    if not isinstance(stop, Interrupted):
        stop = Interrupted(stop.signum, records.place.run_dir / "checkpoints" / "last.pt")
    records.close(stop)
    print(stop, file=sys.stderr)
    if in_sweep:
        stop_sweep(job, cfg, why=f"the sweep was stopped during job {job.job.num}")
    raise Exit(stop.exit_code) from None


def decide_place(cfg: DictConfig, job: DictConfig, overrides: list[str], *,
                 in_sweep: bool) -> tuple[DictConfig, rundir.Place | None]:
    """(config, Place) of the run, or (config, None) for a sweep job that is already done. A sweep job whose sweep
    folder holds an earlier run of it keeps, resumes or runs it again (trainer/sweep/resume.py)."""
    if not in_sweep:
        return cfg, rundir.place(cfg, job.runtime.output_dir, overrides)
    plan = resume_sweep.plan_job(cfg, new_dir=job.runtime.output_dir, sweep_dir=job.sweep.dir, num=job.job.num,
                                 overrides=overrides, ignored=tuple(job.job.config.override_dirname.exclude_keys))
    if plan.action == "keep":
        log.info(f"job {job.job.num} ({' '.join(overrides)}) is done: kept as it is in {plan.run_dir}")
        return cfg, None
    if plan.action != "new":
        log.info(f"job {job.job.num} ({' '.join(overrides)}): {plan.action} in {plan.run_dir}")
    return plan.cfg, rundir.place(plan.cfg, plan.run_dir)


def stop_sweep(job: DictConfig, cfg: DictConfig, *, why: str) -> None:
    from trainer.sweep import stop_sweep as summarize_so_far  # matplotlib and SciPy: not for `train --help`

    summarize_so_far(job.sweep.dir, why=why, target=cfg.sweep.target)


class Records:
    """What the run leaves in its folder besides its results: .hydra/ and train.log from the start (for a resumed
    run, once the resume is accepted), and status.json at the end. A single run refused before it wrote anything
    else (a config mistake, a folder it cannot write) leaves nothing behind: its records are removed, and so is its
    folder if it was made for it (outputs/DATE/TIME; a folder named with hydra.run.dir may be the user's)."""

    def __init__(self, place: rundir.Place, cfg: DictConfig, job: DictConfig, *, in_sweep: bool = False):
        self.place, self.started, self.log = place, time.perf_counter(), None
        self.writes, self.in_sweep = rundir.is_rank_0(), in_sweep
        self.made_here = "hydra.run.dir" not in {override_key(o) for o in job.overrides.hydra}
        if not self.writes:
            return
        try:
            if place.continuing:
                place.on_begin = lambda: self.open_log(
                    f"resumed from {cfg.ckpt_path} with {' '.join(job.overrides.task)}")
            else:
                rundir.write_hydra_record(place.run_dir, cfg, job)
                self.open_log(f"train {' '.join(job.overrides.task)}")
        except OSError as error:
            raise rundir.cannot_make(place.run_dir, error, key="hydra.run.dir") from None

    def open_log(self, command: str) -> None:
        self.log = RunLog(self.place.run_dir / "train.log").start()
        self.log.note(command)

    def close(self, error: BaseException | None = None, details: Mapping[str, object] | None = None) -> None:
        if not (self.place.ours and self.writes):
            return
        if self.log is not None:
            if getattr(error, "status", None) == "partial":  # done, with inputs it skipped: a sentence, not a failure
                self.log.note(f"partial: {error}")
            elif error is not None and not isinstance(error, Interrupted):
                self.log.failure(error)
            self.log.stop()
        refused = isinstance(error, UserError) and not self.in_sweep  # a sweep's summary lists a job's reason
        if refused and rundir.discard_records(self.place.run_dir, remove_folder=self.made_here):
            return
        try:
            rundir.write_status(self.place.run_dir, time.perf_counter() - self.started, error, details=details)
        except UserError:
            pass  # the disk is full: the run's own error says so already


def report(error: Exception, cfg: DictConfig, overrides: list[str], *, in_sweep: bool) -> None:
    """A failed run: one sentence for the user's mistakes, the traceback for anything else; in a sweep, recorded and
    the sweep goes on (the summary marks the job and the sweep exits 1), unless sweep.fail_fast stops it."""
    if in_sweep:
        log.error(f"job failed ({' '.join(overrides)}): {error}", exc_info=not isinstance(error, UserError))
        if cfg.sweep.fail_fast:
            job = HydraConfig.get()
            stop_sweep(job, cfg, why=f"sweep.fail_fast=true: job {job.job.num} failed, so the sweep stops")
            raise Exit(FAILED)
        return None
    if isinstance(error, UserError):
        print(f"error: {error}", file=sys.stderr)
        raise Exit(getattr(error, "exit_code", USER_MISTAKE))  # mode=predict's skipped inputs: 3
    traceback.print_exception(error)  # not the user's mistake: the whole story, for a bug report
    raise Exit(FAILED)


def entry() -> NoReturn:
    """The `train` command and `python -m trainer`: `main`, then `exit_now` with its exit status."""
    try:
        main()
        status = 0
    except SystemExit as exit:
        status = exit.code
    exit_now(status)


def exit_now(status: int | str | None) -> NoReturn:
    """End the process with `status` (SystemExit's: None is 0, a text is printed and is 1) once all it wrote is out,
    without the interpreter's teardown: freeing torch's modules one by one takes about a second, as long as a short
    run's pictures (docs/speed.md). What that teardown would still do for the run is done first: the atexit functions
    (logging's flush and close, the painter's end, temporary folders, multiprocessing's workers) and the standard
    streams' flush. A non-daemon thread still running (a library's) gets Python's own exit, which waits for it."""
    if isinstance(status, str):
        print(status, file=sys.stderr)
    code = status if isinstance(status, int) else 0 if status is None else 1
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what Python's exit runs first, before tearing the modules down
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with the stream closed (`train >&-`)
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (`train | head`), a closed stream: nothing more can be said
            pass
    os._exit(code)


def main() -> None:
    """`train` and `python -m trainer`. Under torchrun (WORLD_SIZE > 1) each process first joins the process
    group, so that all of them agree on one run dir before Hydra composes the config."""
    try:
        os.getcwd()
    except FileNotFoundError:  # Hydra and the run folders are relative to it
        print("error: the folder train was started in no longer exists (it was removed or renamed): cd into a "
              "folder that exists and run the command again", file=sys.stderr)
        raise Exit(USER_MISTAKE) from None
    rundir.register_resolvers()
    StopAtOnce().install()  # a signal before the run has a folder: one line, not a traceback
    try:
        # `train resume_sweep=DIR`: the sweep's command; paths as typed, whatever characters they hold
        sys.argv[1:] = as_typed(resume_sweep.expand_command(sys.argv[1:]))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise Exit(USER_MISTAKE) from None
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return run_hydra()
        from trainer.runtime import distributed  # imports torch, which `train --help` should not wait for

        distributed.start()
        try:
            return run_hydra()
        finally:
            distributed.stop()
    except Exit:
        raise
    except Stop as stop:  # before the run had a folder, or between a sweep's jobs: nothing to record
        print(Interrupted(stop.signum), file=sys.stderr)
        raise Exit(128 + stop.signum) from None
    except SystemExit as exit:
        # Hydra reports its own errors (an unknown option, a malformed override) and exits 1: the user's mistake
        raise Exit(USER_MISTAKE if exit.code == 1 else exit.code) from None


def run_hydra() -> None:
    """`run`, as Hydra calls it once it has composed the config, with Hydra's own errors raised to us instead of
    printed (HYDRA_FULL_ERROR), so that a misspelt key can be named (hydra_error)."""
    users_own = "HYDRA_FULL_ERROR" in os.environ
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        return run()
    except Exception as error:  # run() itself reports every error of a run: this is Hydra's
        hydra_error(error, users_own=users_own)


def hydra_error(error: Exception, *, users_own: bool) -> None:
    """An error Hydra raised outside losslab's code (before the run: composing the config). A key the config lacks
    (`trainer.epoch=1`) is one sentence naming the key meant, instead of Hydra's advice to add it with `+`; anything
    else is printed as Hydra prints it (exit 2), or raised as it is when the user set HYDRA_FULL_ERROR."""
    from trainer.sweep.callback import discard_unstarted  # a sweep none of whose jobs could begin: nothing behind

    discard_unstarted()
    mistake = misspelt_override(error)
    if mistake is not None:
        print(f"error: {mistake}", file=sys.stderr)
        raise Exit(USER_MISTAKE) from None
    if users_own:
        raise error
    from hydra._internal.utils import run_and_report  # Hydra's own report: its message, or a trimmed traceback

    def again() -> NoReturn:
        raise error

    del os.environ["HYDRA_FULL_ERROR"]
    try:
        run_and_report(again)
    except SystemExit:
        raise Exit(USER_MISTAKE) from None
