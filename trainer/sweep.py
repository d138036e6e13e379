"""Where runs and sweeps write, what each job leaves behind (status.json), and what a sweep ends with:
summary.md, summary.csv and curves.png in the sweep dir, built only from the job dirs on disk so the same code
summarises a finished, failed or interrupted sweep (scripts/summarize.py calls `summarize` directly).
"""
import csv
import io
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from trainer.errors import first_line

METRIC_COLUMNS = (  # (metrics.json key, column title, format)
    ("best/val_acc", "best val acc", "{:.4f}"),
    ("best/epoch", "best epoch", "{:d}"),
    ("test/acc", "test acc", "{:.4f}"),
    ("test/loss", "test loss", "{:.4f}"),
    ("train/loss", "train loss", "{:.4f}"),
    ("epochs", "epochs", "{:d}"),
)


# --- unique output dirs -------------------------------------------------------------------------------------

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


# use_cache: the sweep dir is resolved once per sweep; Hydra copies the cache into every job's config (also when
# a launcher pickles the config to another process), so all jobs agree on the folder this call claimed.
OmegaConf.register_new_resolver("unique_dir", claim_dir, use_cache=True, replace=True)


# --- what each job records ----------------------------------------------------------------------------------

def write_status(run_dir, wall_time_s, error=None):
    """status.json: done, or failed (interrupted, for a stop by a signal) with the error's first line; the
    summary reads it for every job."""
    status = {"status": "done" if error is None else getattr(error, "status", "failed"),
              "wall_time_s": round(wall_time_s, 3),
              "error": None if error is None else first_line(error),
              "error_type": None if error is None else type(error).__name__}
    Path(run_dir, "status.json").write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")


# --- reading a sweep dir ------------------------------------------------------------------------------------

@dataclass
class Job:
    name: str                        # the job dir, relative to the sweep dir
    num: int
    overrides: list
    status: str                      # done | failed | unfinished (no status.json: still running or interrupted)
    error: str = None
    wall_time_s: float = None
    metrics: dict = field(default_factory=dict)


def _read_json(path):
    return json.loads(path.read_text()) if path.is_file() else {}


def _job_num(job_dir):
    hydra_yaml = job_dir / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        num = (yaml.safe_load(hydra_yaml.read_text()) or {}).get("hydra", {}).get("job", {}).get("num")
        if isinstance(num, int):
            return num
    return 1 << 30  # unknown: after the numbered jobs


def read_job(job_dir, sweep_dir):
    status = _read_json(job_dir / "status.json")
    return Job(name=str(job_dir.relative_to(sweep_dir)), num=_job_num(job_dir),
               overrides=[str(o) for o in yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []],
               status=status.get("status", "unfinished"), error=status.get("error"),
               wall_time_s=status.get("wall_time_s"), metrics=_read_json(job_dir / "metrics.json"))


def read_jobs(sweep_dir):
    """Every job dir under the sweep dir (a folder with .hydra/overrides.yaml), in launch order."""
    sweep_dir = Path(sweep_dir)
    # the sweep dir itself is a job dir when a job has no overrides (hydra.sweep.subdir is then empty)
    dirs = {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}
    return sorted((read_job(d, sweep_dir) for d in dirs), key=lambda job: (job.num, job.name))


# --- labels: what differs between jobs ----------------------------------------------------------------------

def override_key(override):
    return override.split("=", 1)[0].lstrip("+~")


def common_overrides(jobs):
    """Overrides every job has with the same value; the rest is what the sweep varies."""
    if len(jobs) < 2:
        return []
    shared = set(jobs[0].overrides)
    for job in jobs[1:]:
        shared &= set(job.overrides)
    return [o for o in jobs[0].overrides if o in shared]


def label(job, common, drop_keys=()):
    varying = [o for o in job.overrides if o not in common and override_key(o) not in drop_keys]
    return " ".join(varying) or "(defaults)"


def seeds_vary(jobs):
    seeds = {o for job in jobs for o in job.overrides if override_key(o) == "seed"}
    return len(seeds) > 1


# --- tables ---------------------------------------------------------------------------------------------------

def ranked(jobs):
    """Best validation accuracy first; jobs without one (failed, unfinished) last, in launch order."""
    return sorted(jobs, key=lambda job: (-job.metrics.get("best/val_acc", -math.inf), job.num))


def status_text(job):
    return f"failed: {job.error}" if job.status == "failed" else job.status


def _cell(value, fmt):
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _markdown(header, rows):
    escape = lambda text: str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def jobs_table(jobs, common):
    header = ["rank", "overrides", "status", *(title for _, title, _ in METRIC_COLUMNS), "wall time (s)"]
    rows = [[rank, label(job, common), status_text(job),
             *(_cell(job.metrics.get(key), fmt) for key, _, fmt in METRIC_COLUMNS), _cell(job.wall_time_s, "{:.1f}")]
            for rank, job in enumerate(ranked(jobs), start=1)]
    return _markdown(header, rows)


def _mean_std(values, fmt):
    if not values:
        return "–"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def seed_groups(jobs, common):
    """{label without seed: [jobs]} for jobs that differ only by seed."""
    groups = {}
    for job in jobs:
        groups.setdefault(label(job, common, drop_keys=("seed",)), []).append(job)
    return groups


def seed_table(jobs, common):
    """One row per group of runs that differ only by seed: mean ± sample std over its finished runs."""
    keys = (("best/val_acc", "best val acc"), ("test/acc", "test acc"), ("test/loss", "test loss"),
            ("train/loss", "train loss"))
    rows = []
    for name, members in seed_groups(jobs, common).items():
        done = [job for job in members if job.status == "done"]
        values = {key: [job.metrics[key] for job in done if key in job.metrics] for key, _ in keys}
        seeds = [o.split("=", 1)[1] for job in members for o in job.overrides if override_key(o) == "seed"]
        rows.append((statistics.mean(values["best/val_acc"]) if values["best/val_acc"] else -math.inf,
                     [name, f"{len(done)}/{len(members)}", " ".join(seeds),
                      *(_mean_std(values[key], "{:.4f}") for key, _ in keys)]))
    rows.sort(key=lambda row: -row[0])
    header = ["rank", "overrides (all seeds)", "runs done", "seeds", *(title for _, title in keys)]
    return _markdown(header, [[rank, *row] for rank, (_, row) in enumerate(rows, start=1)])


def summary_markdown(sweep_dir, jobs):
    common = common_overrides(jobs)
    counts = {s: sum(job.status == s for job in jobs) for s in ("done", "failed", "unfinished")}
    lines = [f"# Sweep summary: {sweep_dir}", "",
             f"{len(jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ". "
             "Ranked by best validation accuracy.",
             ""]
    if common:
        lines += ["Same in every job: `" + " ".join(common) + "`", ""]
    lines += [jobs_table(jobs, common), ""]
    if seeds_vary(jobs):
        lines += ["## Grouped by seed (mean ± std over seeds)", "", seed_table(jobs, common), ""]
    if any(job.metrics.get("history") for job in jobs):
        lines += ["![validation curves](curves.png)", ""]
    return "\n".join(lines)


def summary_csv(jobs):
    """One row per job with full overrides and raw numbers, for a spreadsheet or pandas."""
    common = common_overrides(jobs)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "job_dir", "overrides", "group", "status", "error",
                     *(key for key, _, _ in METRIC_COLUMNS), "wall_time_s"])
    for rank, job in enumerate(ranked(jobs), start=1):
        writer.writerow([rank, job.name, " ".join(job.overrides), label(job, common, drop_keys=("seed",)),
                         job.status, job.error or "", *(job.metrics.get(key, "") for key, _, _ in METRIC_COLUMNS),
                         "" if job.wall_time_s is None else job.wall_time_s])
    return out.getvalue()


# --- the picture --------------------------------------------------------------------------------------------

def plot_curves(jobs, path):
    """Validation loss and accuracy per epoch of every finished job, one colour per label (runs that differ only
    by seed share a colour when the sweep varies the seed). Returns False when no job has a history."""
    from matplotlib.figure import Figure  # a bare Figure needs no pyplot backend: works headless
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    with_history = [job for job in jobs if job.metrics.get("history")]
    if not with_history:
        return False
    common = common_overrides(jobs)
    drop = ("seed",) if seeds_vary(jobs) else ()
    names = list(dict.fromkeys(label(job, common, drop) for job in ranked(with_history)))
    colours = {name: f"C{i % 10}" for i, name in enumerate(names)}
    styles = ("-", "--", ":", "-.")
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    loss_ax, acc_ax = figure.subplots(1, 2)
    for job in with_history:
        name = label(job, common, drop)
        epochs = [row["epoch"] for row in job.metrics["history"]]
        style = styles[(names.index(name) // 10) % len(styles)]
        loss_ax.plot(epochs, [row["loss/val"] for row in job.metrics["history"]], style, color=colours[name],
                     marker="o", markersize=3)
        acc_ax.plot(epochs, [row["acc/val"] for row in job.metrics["history"]], style, color=colours[name],
                    marker="o", markersize=3, label=name)
    losses = [row["loss/val"] for job in with_history for row in job.metrics["history"]]
    if all(value > 0 and math.isfinite(value) for value in losses):
        loss_ax.set_yscale("log")  # different losses live on different scales
        loss_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.1 0.2 0.5 1 2 5: readable
        loss_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        loss_ax.yaxis.set_minor_formatter(NullFormatter())
    loss_ax.set(title="validation loss", xlabel="epoch", ylabel="loss")
    acc_ax.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = acc_ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # one legend entry per colour
    ordered = [name for name in names if name in unique]
    figure.legend([unique[n] for n in ordered], ordered, loc="outside right upper", fontsize="small",
                  title="ranked by best val acc")
    figure.savefig(path, dpi=80)
    return True


# --- putting it together ------------------------------------------------------------------------------------

def summarize(sweep_dir):
    """Write summary.md, summary.csv and curves.png into the sweep dir; returns (markdown text, jobs)."""
    sweep_dir = Path(sweep_dir)
    jobs = read_jobs(sweep_dir)
    has_curves = plot_curves(jobs, sweep_dir / "curves.png")
    if not has_curves:
        (sweep_dir / "curves.png").unlink(missing_ok=True)  # a stale picture would show jobs the table does not
    text = summary_markdown(sweep_dir, jobs)
    (sweep_dir / "summary.md").write_text(text)
    (sweep_dir / "summary.csv").write_text(summary_csv(jobs))
    return text, jobs


class SummaryCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks: at the end of every multirun, summarise the sweep and
    exit non-zero if a job failed (the jobs catch their own errors so the rest of the sweep runs; Hydra's
    main wrapper drops the sweep's return value, so this is the last code that sees the whole sweep)."""

    def on_multirun_end(self, config, **kwargs):
        sweep_dir = Path(str(config.hydra.sweep.dir))
        text, jobs = summarize(sweep_dir)
        written = [name for name in ("summary.md", "summary.csv", "curves.png") if (sweep_dir / name).is_file()]
        print(f"\n{text}\nwritten in {sweep_dir}: {', '.join(written)}", flush=True)
        failed = [job for job in jobs if job.status == "failed"]
        if failed:
            sys.exit(f"error: {len(failed)} of {len(jobs)} jobs failed: see {sweep_dir / 'summary.md'}")
