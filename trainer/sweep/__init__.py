"""A sweep (`train -m ...`): what it ends with and how it is finished.

- `jobs`: the sweep's jobs as its folder holds them (records, statuses, Hydra's planned grid, labels, seeds);
- `summary` (each job's values, seed groups ranked and compared), `stats` (intervals and tests over seeds),
  `columns` (what the tables show), `report` (summary.md and the csv files), `pictures` and `figures`
  (curves.png, reliability_overlay.png);
- `callback`: `summarize` and the Hydra callback that calls it at the end of every multirun;
- `resume`: finishing a sweep in place, and `train resume_sweep=DIR`.

No torch here: a summary is read from files, and SciPy and matplotlib load only when it is computed and drawn. The
names below load their module on first use: a single run (whose Hydra config names the callback) and the CLI's
`resume_sweep=DIR` never wait for the summary's modules.
"""
from trainer._lazy import lazy_exports

__all__ = ["FILES", "SHORTCUT", "Job", "SummaryCallback", "expand_command", "plan_job", "read_jobs", "read_summary",
           "stop_sweep", "summarize", "summarize_and_show"]
__getattr__ = lazy_exports(__name__, {
    "FILES": "callback", "SummaryCallback": "callback", "stop_sweep": "callback", "summarize": "callback",
    "summarize_and_show": "callback", "Job": "jobs", "read_jobs": "jobs", "SHORTCUT": "resume",
    "expand_command": "resume", "plan_job": "resume", "read_summary": "summary",
})
