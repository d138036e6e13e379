"""Rewrite summary.md, summary.csv and curves.png of a sweep dir, finished or interrupted, and print the table.

    python scripts/summarize.py outputs/multirun/2024-05-01/12-00-00

Jobs that never wrote status.json (still running, or the sweep was stopped) are listed as unfinished.
"""
import argparse
import sys
from pathlib import Path

from trainer.sweep import read_jobs, summarize


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a folder under outputs/multirun/DATE/")
    args = parser.parse_args(argv)
    if not read_jobs(args.sweep_dir):
        print(f"error: {args.sweep_dir} has no job folders (with .hydra/overrides.yaml): pass a sweep dir, "
              "e.g. outputs/multirun/DATE/TIME", file=sys.stderr)
        return 2
    text, _ = summarize(args.sweep_dir)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
