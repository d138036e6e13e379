"""What a sweep ends with: summary.md, summary.csv and curves.png in the sweep dir, built only from the job dirs on
disk (each job's .hydra/, status.json and metrics.json), so the same code summarises a finished, failed or
interrupted sweep (scripts/summarize.py calls `summarize` directly).
"""
import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hydra.experimental.callback import Callback

from trainer.config import override_key
from trainer.errors import Exit
from trainer.metrics import ACC, BEST, BEST_EPOCH, EPOCHS, HISTORY, LOSS, TEST, TRAIN, result_key

METRIC_COLUMNS = (  # (metrics.json key, column title, format)
    (BEST.best_key, "best val acc", "{:.4f}"),
    (BEST_EPOCH, "best epoch", "{:d}"),
    (result_key(TEST, ACC), "test acc", "{:.4f}"),
    (result_key(TEST, LOSS), "test loss", "{:.4f}"),
    (result_key(TRAIN, LOSS), "train loss", "{:.4f}"),
    (EPOCHS, "epochs", "{:d}"),
)
# the seed table's columns: (metrics.json key, column title)
SEED_COLUMNS = tuple((key, title) for key, title, _ in METRIC_COLUMNS if key not in (BEST_EPOCH, EPOCHS))


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
    return sorted(jobs, key=lambda job: (-job.metrics.get(BEST.best_key, -math.inf), job.num))


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
    keys = SEED_COLUMNS
    rows = []
    for name, members in seed_groups(jobs, common).items():
        done = [job for job in members if job.status == "done"]
        values = {key: [job.metrics[key] for job in done if key in job.metrics] for key, _ in keys}
        seeds = [o.split("=", 1)[1] for job in members for o in job.overrides if override_key(o) == "seed"]
        rows.append((statistics.mean(values[BEST.best_key]) if values[BEST.best_key] else -math.inf,
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
    if any(job.metrics.get(HISTORY) for job in jobs):
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


# --- putting it together ------------------------------------------------------------------------------------

def plot_curves(jobs, path):
    """curves.png: the validation curves of every finished job, labelled by what differs between jobs (runs that
    differ only by seed share a colour when the sweep varies the seed). Returns False when no job has a history."""
    from trainer.figures import curves_figure

    with_history = [job for job in ranked(jobs) if job.metrics.get(HISTORY)]
    if not with_history:
        return False
    common, drop = common_overrides(jobs), ("seed",) if seeds_vary(jobs) else ()
    series = [(label(job, common, drop), job.metrics[HISTORY]) for job in with_history]
    curves_figure(series, legend_title="ranked by best val acc").savefig(path, dpi=80)
    return True


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
            raise Exit(f"error: {len(failed)} of {len(jobs)} jobs failed: see {sweep_dir / 'summary.md'}")  # status 1
