"""A sweep's summary as text: summary.md (the seed-group table, the table of every job, the pictures) and the csv
files (summary.csv per job, summary_groups.csv per seed group)."""
from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from trainer.run.rundir import DIVERGED, FAILED, STATUSES
from trainer.sweep.columns import COLUMNS, EPOCHS_TO_TARGET, NEVER
from trainer.sweep.jobs import label, seeds_of, seeds_vary
from trainer.sweep.callback import CURVES, RELIABILITY
from trainer.sweep.stats import MIN_BOOTSTRAP, PAIRED_T
from trainer.sweep.summary import ranked, ranking_text, sweep_monitor

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trainer.sweep.columns import Column
    from trainer.sweep.jobs import Job
    from trainer.sweep.stats import Estimate
    from trainer.sweep.summary import Group, Summary


def status_text(job: Job) -> str:
    return f"{job.status}: {job.error}" if job.status in (FAILED, DIVERGED) and job.error else job.status


def _cell(value, fmt):
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    escape = lambda text: str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def shown_columns(summary: Summary, *, grouped: bool = False) -> list[Column]:
    """The columns of summary.md: every one, except an optional one no job has."""
    return [column for column in COLUMNS if (column.grouped or not grouped)
            and (not column.optional or any(column.key in values for values in summary.values.values()))]


def jobs_table(summary: Summary) -> str:
    columns = shown_columns(summary)
    header = ["rank", "overrides", "status", *(column.title for column in columns), "wall time (s)"]
    rows = [[rank, label(job, summary.common), status_text(job),
             *(_cell(summary.values[job.name].get(column.key), column.fmt) for column in columns),
             _cell(job.wall_time_s, "{:.1f}")]
            for rank, job in enumerate(ranked(summary.jobs), start=1)]
    return markdown_table(header, rows)


def interval_text(found: Estimate, fmt: str) -> str:
    """"mean [low, high]", or the value alone for one run."""
    text = fmt.format(found.mean)
    return text if found.low is None else f"{text} [{fmt.format(found.low)}, {fmt.format(found.high)}]"


def estimate_text(group: Group, column: Column) -> str:
    """"mean [low, high]" (the mean alone for one run), and for epochs to target the runs that never got there."""
    found, fmt = group.estimates.get(column.key), column.mean_fmt or column.fmt
    text = "–" if found is None else interval_text(found, fmt)
    if column.key == EPOCHS_TO_TARGET and group.never:
        text = NEVER if found is None else f"{text}, {NEVER} in {group.never}"
    return text


def interval_kind(group: Group) -> str:
    """How the row's intervals were made, and over how many finished runs."""
    n = len(group.done)
    return "one run" if n == 1 else "–" if n == 0 else f"range of {n}" if n < MIN_BOOTSTRAP else f"95% BCa of {n}"


def verdict_text(group: Group) -> str:
    if group.verdict in (None, "best"):
        return group.verdict or "–"
    return f"{group.verdict} (p={group.comparison.p_holm:.2g})"


def test_text(group: Group) -> str:
    found = group.comparison
    if found is None or found.test is None:
        return "–"
    return f"{found.test}, {found.pairs} seeds" if found.test == PAIRED_T else found.test


def difference_text(group: Group, fmt: str) -> str:
    """The other group against the best: "-0.0500 [-0.0800, -0.0300]", or as a ratio "×2.80 [1.90, 6.50]"."""
    found = group.comparison.difference if group.comparison is not None else None
    if found is None:
        return "–"
    if group.comparison.ratio:
        return "×" + interval_text(found, "{:.3g}")
    return interval_text(found, fmt.replace("{:", "{:+"))


def group_table(summary: Summary) -> str:
    """One row per seed group: mean [interval] of every column over its finished runs (how the interval was made
    and n in "interval"), and against the best group: the verdict (Holm-adjusted p), the test, the difference (or
    ratio) with its interval, and the seeds the best group won."""
    columns = shown_columns(summary, grouped=True)
    ranking = next((column for column in columns if column.key == sweep_monitor(summary.jobs).best_key), columns[0])
    header = ["rank", "overrides (all seeds)", "runs done", "seeds", "interval", "vs best", "test",
              "difference to best", "best won", *(column.title for column in columns)]
    rows = [[rank, group.name, f"{len(group.done)}/{len(group.jobs)}", " ".join(seeds_of(group.jobs)),
             interval_kind(group), verdict_text(group), test_text(group), difference_text(group, ranking.fmt),
             wins_text(group), *(estimate_text(group, column) for column in columns)]
            for rank, group in enumerate(summary.groups, start=1)]
    return markdown_table(header, rows)


def wins_text(group: Group) -> str:
    found = group.comparison
    return "–" if found is None or found.wins is None else f"{found.wins}/{found.pairs}"


GROUPS_EXPLAINED = (
    "Each cell is the mean over the group's finished seeds and an interval that stays in the metric's range: "
    f"with fewer than {MIN_BOOTSTRAP} seeds the range of the seeds' values (\"range of n\"), from {MIN_BOOTSTRAP} "
    "on the 95% BCa bootstrap interval of the mean. Each group is compared with the best on what ranks the sweep: "
    "paired by seed when the two share seeds (the same seed is the same split, initialisation and batch order), as "
    "the per-seed difference, or for an error or a loss the per-seed ratio (×), with its mean and interval, the "
    "seeds in which the best group won, and Student's paired t test (on the log ratios for a ratio); Welch's t test "
    "where the seeds do not match. \"tied\" means the test cannot tell the group from the best at the 5% level "
    "after Holm's correction for comparing several groups with the best (the p shown is Holm-adjusted), "
    "\"worse\" that it can. With three seeds only a large, consistent difference can show: read the difference "
    "and the wins, not only the verdict.")


def target_line(summary: Summary) -> list[str]:
    if summary.target_acc is None:
        return []
    best = summary.target_acc / summary.target
    return [f"Epochs to target: the first epoch whose validation accuracy reached {summary.target_acc:.4f} "
            f"(`sweep.target={summary.target:g}` × {best:.4f}, the best in the sweep), or \"{NEVER}\".", ""]


def summary_markdown(summary: Summary, pictures: Sequence[str] = ()) -> str:
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
        lines += ["## Seed groups (mean [interval]; paired by seed against the best)", "", GROUPS_EXPLAINED, "",
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


def summary_csv(summary: Summary) -> str:
    """One row per job with full overrides and raw numbers, for a spreadsheet or pandas."""
    header = ["rank", "job_dir", "overrides", "group", "status", "error", *(c.key for c in COLUMNS), "wall_time_s"]
    rows = [[rank, job.name, " ".join(job.overrides), label(job, summary.common, drop_keys=("seed",)), job.status,
             job.error or "", *(summary.values[job.name].get(c.key, "") for c in COLUMNS),
             "" if job.wall_time_s is None else job.wall_time_s]
            for rank, job in enumerate(ranked(summary.jobs), start=1)]
    return _csv(header, rows)


def groups_csv(summary: Summary) -> str:
    """One row per seed group: the numbers behind the seed table. For every column KEY: "KEY mean", the interval
    "KEY low" and "KEY high" (empty for one run) and "KEY n" (finished runs that have it); against the best group,
    "test" (paired t or Welch), "p_vs_best" (its p-value), "p_holm" (Holm-adjusted; it decides "vs_best"),
    "difference mean/low/high" (other minus best, or other / best where "ratio" is true), "pairs" and "best_won"."""
    keys = [column.key for column in COLUMNS if column.grouped]
    header = ["rank", "group", "runs", "runs_done", "seeds", "vs_best", "test", "p_vs_best", "p_holm", "ratio",
              "difference mean", "difference low", "difference high", "pairs", "best_won",
              *(f"{key} {part}" for key in keys for part in ("mean", "low", "high", "n")), "epochs_to_target never"]
    blank = lambda value: "" if value is None else value
    rows = []
    for rank, group in enumerate(summary.groups, start=1):
        found = [group.estimates.get(key) for key in keys]
        versus = group.comparison
        difference = versus.difference if versus is not None else None
        rows.append([rank, group.name, len(group.jobs), len(group.done), " ".join(seeds_of(group.jobs)),
                     blank(group.verdict), *(blank(getattr(versus, part, None)) for part in ("test", "p_value",
                                                                                             "p_holm", "ratio")),
                     *(blank(getattr(difference, part, None)) for part in ("mean", "low", "high")),
                     blank(getattr(versus, "pairs", None)), blank(getattr(versus, "wins", None)),
                     *(blank(getattr(e, part, None)) for e in found for part in ("mean", "low", "high", "n")),
                     group.never])
    return _csv(header, rows)
