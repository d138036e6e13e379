"""Rewrite the summary of a sweep dir, finished or interrupted, and print it.

    python scripts/summarize.py outputs/multirun/2024-05-01/12-00-00
    python scripts/summarize.py outputs/multirun/2024-05-01/12-00-00 --target 0.9

Writes summary.md, summary.csv, summary_groups.csv, curves.png and reliability_overlay.png into the sweep dir. Jobs
that never wrote status.json (still running, or their process died) are listed as unfinished, and the jobs of the
sweep's grid without a folder as not started.
"""
import argparse
import sys
from pathlib import Path

from trainer.errors import UserError
from trainer.sweep import read_jobs, summarize


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a folder under outputs/multirun/DATE/")
    parser.add_argument("--target", type=float, default=None,
                        help="sweep.target: epochs to target counts the first epoch reaching this fraction of the "
                             "sweep's best validation accuracy (default: the value the sweep ran with)")
    args = parser.parse_args(argv)
    if not read_jobs(args.sweep_dir):
        print(f"error: {args.sweep_dir} has no job folders (with .hydra/overrides.yaml): pass a sweep dir, "
              "e.g. outputs/multirun/DATE/TIME", file=sys.stderr)
        return 2
    try:
        text, _ = summarize(args.sweep_dir, target=args.target)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
