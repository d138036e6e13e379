"""A sweep's summary as text: summary.md (the seed-group table, the table of every job, the pictures) and the csv
files (summary.csv per job, summary_groups.csv per seed group)."""
import csv
import io

from trainer.run.rundir import DIVERGED, FAILED, STATUSES
from trainer.sweep.columns import COLUMNS, EPOCHS_TO_TARGET, NEVER
from trainer.sweep.jobs import label, seeds_of, seeds_vary
from trainer.sweep.callback import CURVES, RELIABILITY
from trainer.sweep.summary import ranked, ranking_text, sweep_monitor


def status_text(job):
    return f"{job.status}: {job.error}" if job.status in (FAILED, DIVERGED) and job.error else job.status


def _cell(value, fmt):
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown_table(header, rows):
    escape = lambda text: str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def shown_columns(summary, *, grouped=False):
    """The columns of summary.md: every one, except an optional one no job has."""
    return [column for column in COLUMNS if (column.grouped or not grouped)
            and (not column.optional or any(column.key in values for values in summary.values.values()))]


def jobs_table(summary):
    columns = shown_columns(summary)
    header = ["rank", "overrides", "status", *(column.title for column in columns), "wall time (s)"]
    rows = [[rank, label(job, summary.common), status_text(job),
             *(_cell(summary.values[job.name].get(column.key), column.fmt) for column in columns),
             _cell(job.wall_time_s, "{:.1f}")]
            for rank, job in enumerate(ranked(summary.jobs), start=1)]
    return markdown_table(header, rows)


def estimate_text(group, column):
    """"mean ± half-width" (the mean alone for one run), and for epochs to target the runs that never got there."""
    found, fmt = group.estimates.get(column.key), column.mean_fmt or column.fmt
    text = "–" if found is None else fmt.format(found.mean)
    if found is not None and found.half_width is not None:
        text += f" ± {fmt.format(found.half_width)}"
    if column.key == EPOCHS_TO_TARGET and group.never:
        text = NEVER if found is None else f"{text}, {NEVER} in {group.never}"
    return text


def verdict_text(group):
    if group.verdict in (None, "best"):
        return group.verdict or "–"
    return f"{group.verdict} (p={group.p_value:.2g})"


def group_table(summary):
    """One row per seed group: mean ± 95% interval of every column over its finished runs, and Welch's verdict."""
    columns = shown_columns(summary, grouped=True)
    header = ["rank", "overrides (all seeds)", "runs done", "seeds", "vs best", *(column.title for column in columns)]
    rows = [[rank, group.name, f"{len(group.done)}/{len(group.jobs)}", " ".join(seeds_of(group.jobs)),
             verdict_text(group), *(estimate_text(group, column) for column in columns)]
            for rank, group in enumerate(summary.groups, start=1)]
    return markdown_table(header, rows)


GROUPS_EXPLAINED = (
    "± is the 95% confidence interval of the mean over the seeds (Student's t, n−1 degrees of freedom); "
    "\"tied\" means Welch's t-test cannot tell the group's best validation value (accuracy, or a regression's "
    "RMSE) from the best group's at the 5% level "
    "(p ≥ 0.05), \"worse\" that it can (p < 0.05).")


def target_line(summary):
    if summary.target_acc is None:
        return []
    best = summary.target_acc / summary.target
    return [f"Epochs to target: the first epoch whose validation accuracy reached {summary.target_acc:.4f} "
            f"(`sweep.target={summary.target:g}` × {best:.4f}, the best in the sweep), or \"{NEVER}\".", ""]


def summary_markdown(summary, pictures=()):
    jobs, common = summary.jobs, summary.common
    counts = {s: sum(job.status == s for job in jobs) for s in STATUSES}
    times = [job.wall_time_s for job in jobs if job.wall_time_s is not None]
    total = f" Wall time {sum(times):.1f} s in all ({len(times)} jobs)." if times else ""
    lines = [f"# Sweep summary: {summary.sweep_dir}", "",
             f"{len(jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ". "
             f"Ranked by {ranking_text(sweep_monitor(jobs))}.{total}",
             ""]
    if common:
        lines += ["Same in every job: `" + " ".join(common) + "`", ""]
    lines += target_line(summary)
    if seeds_vary(jobs):
        lines += ["## Seed groups (mean ± 95% confidence interval)", "", GROUPS_EXPLAINED, "",
                  group_table(summary), "", "## Every job", ""]
    lines += [jobs_table(summary), ""]
    alt = {CURVES: "training and validation curves", RELIABILITY: "reliability diagram of the test split"}
    lines += [f"![{alt[name]}]({name})\n" for name in pictures]
    return "\n".join(lines)


def _csv(header, rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def summary_csv(summary):
    """One row per job with full overrides and raw numbers, for a spreadsheet or pandas."""
    header = ["rank", "job_dir", "overrides", "group", "status", "error", *(c.key for c in COLUMNS), "wall_time_s"]
    rows = [[rank, job.name, " ".join(job.overrides), label(job, summary.common, drop_keys=("seed",)), job.status,
             job.error or "", *(summary.values[job.name].get(c.key, "") for c in COLUMNS),
             "" if job.wall_time_s is None else job.wall_time_s]
            for rank, job in enumerate(ranked(summary.jobs), start=1)]
    return _csv(header, rows)


def groups_csv(summary):
    """One row per seed group: the numbers behind the seed table. For every column KEY: "KEY mean", the interval
    "KEY low" and "KEY high" (empty for one run) and "KEY n" (finished runs that have it); "p_vs_best" is Welch's
    p-value of best/val_acc against the top group."""
    keys = [column.key for column in COLUMNS if column.grouped]
    header = ["rank", "group", "runs", "runs_done", "seeds", "vs_best", "p_vs_best",
              *(f"{key} {part}" for key in keys for part in ("mean", "low", "high", "n")), "epochs_to_target never"]
    blank = lambda value: "" if value is None else value
    rows = []
    for rank, group in enumerate(summary.groups, start=1):
        found = [group.estimates.get(key) for key in keys]
        rows.append([rank, group.name, len(group.jobs), len(group.done), " ".join(seeds_of(group.jobs)),
                     blank(group.verdict), blank(group.p_value),
                     *(blank(getattr(e, part, None)) for e in found for part in ("mean", "low", "high", "n")),
                     group.never])
    return _csv(header, rows)
