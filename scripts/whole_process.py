"""Time two commands as whole processes, start to exit, taken in turn (A B A B ...), and report the median of each
and the median of the pair-by-pair ratio A/B: pairing keeps the ratio meaningful when a shared machine's speed
drifts during the measurement. Wall seconds are read around each process; CPU seconds (user + system) are the
operating system's accounting of the finished process and its children.

    python scripts/whole_process.py -n 5 --vs "python scripts/bare_default.py" -- train trainer.progress=false
    python scripts/whole_process.py -n 5 --vs "python scripts/bare_diabetes.py" -- \\
        train data=diabetes model=mlp loss=mse trainer.progress=false

A sweep against the bare script run once per job:

    python scripts/whole_process.py -n 3 --vs "sh -c 'for s in 0 1 2 3 4 5 6 7 8 9 10 11; do python \\
        scripts/bare_default.py; done'" -- train -m seed=0,1,2,3,4,5,6,7,8,9,10,11 trainer.progress=false

Each run starts in a fresh empty folder (what `train` writes there is deleted after it); a command's output is
thrown away. Commands are split as a shell splits words; for a pipe or a loop use sh -c '...'.
"""
import argparse
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command, env):
    """(wall seconds, CPU seconds) of one run of `command`, in a fresh folder."""
    folder = tempfile.mkdtemp(prefix="whole-process-")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        sys.exit(f"{shlex.join(command)} exited with {result.returncode}:\n{result.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def spread(values):
    return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="pairs to time (after one warm-up pair)")
    parser.add_argument("--vs", required=True, help="command B, the yardstick, as one string")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command A (after --)")
    args = parser.parse_args()
    command_a = args.command[1:] if args.command[:1] == ["--"] else args.command
    command_b = shlex.split(args.vs)
    # scripts/... anywhere in a word (also inside sh -c '...') means this checkout's scripts
    in_repo = lambda word: re.sub(r"(?<![\w/.])scripts/", f"{REPO}/scripts/", word)
    command_a, command_b = [in_repo(word) for word in command_a], [in_repo(word) for word in command_b]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    # as on a user's machine: Python keeps the modules' bytecode after the first run (a sandbox may switch that off)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    timed(command_a, env), timed(command_b, env)  # warm-up: the file cache, Python's bytecode caches
    runs = {"A": [], "B": []}
    for i in range(args.runs):
        for name, command in ((("A", command_a), ("B", command_b)) if i % 2 == 0 else
                              (("B", command_b), ("A", command_a))):
            runs[name].append(timed(command, env))
    print(f"{'':4} {'wall s, median (min-max)':>26} {'cpu s, median (min-max)':>26}   command")
    for name, command in (("A", command_a), ("B", command_b)):
        walls, cpus = zip(*runs[name])
        print(f"{name:4} {spread(walls):>26} {spread(cpus):>26}   {shlex.join(command)}")
    ratios = [a[0] / b[0] for a, b in zip(runs["A"], runs["B"])]
    cpu_ratios = [a[1] / b[1] for a, b in zip(runs["A"], runs["B"])]
    print(f"A/B  {spread(ratios):>26} {spread(cpu_ratios):>26}   (pair by pair, {args.runs} pairs)")


if __name__ == "__main__":
    main()
