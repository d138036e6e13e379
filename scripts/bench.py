"""How much the trainer's loop costs compared with the loop you would write by hand.

For each model and batch size, in one process, times steady-state training throughput (images/s) of
(a) `trainer.run.loop.train_one_epoch` fed by the loader, objective, optimizer and schedule the trainer builds from
the composed config, with progress bars and TensorBoard step logging on, as a user runs it, and
(b) a bare PyTorch loop: for x, y in batches: zero_grad, forward, loss, backward, step,
on the same architecture (a copy of the same weights), data, batch size and optimizer settings.
The two run in alternation, one epoch at a time, several times. Each epoch is timed in windows of
`trainer.log_every_n_steps` steps, so every window of the trainer holds exactly one logging step (loss read-back,
TensorBoard, progress-bar refresh); a low percentile of the window times is reported, because a machine shared with
other jobs only ever slows a window down. Cases with fewer steps per epoch than two windows (large models at large
batches, where logging is negligible) are timed per step. Data is synthetic and CIFAR-shaped (3x32x32, 10 classes).

    python scripts/bench.py                       # CPU: a few minutes
    python scripts/bench.py --device cuda         # the same on a GPU
    python scripts/bench.py --models mlp --batch-sizes 4 --repeats 9
    python scripts/bench.py --threads 1 --repeats 9 --processes 5   # each row's median over 5 fresh processes
    python scripts/bench.py trainer.precision=bf16 trainer.channels_last=true   # options for the trainer's side:
                                                  # the ratio is then the speed-up over a bare float32 loop

With `--image-files N` the data is N generated JPEG files in class folders instead (`data=image_folder`, their own
size, `--image-size` px), and the trainer runs twice: on the splits decoded once into memory (`data.cache=true`,
what `data.cache=auto` chooses when they fit its budget) and streamed from the files every epoch by
`--workers` DataLoader processes (`data.cache=false`). The bare loop trains on the decoded tensors, as before:

    python scripts/bench.py --image-files 5000 --models small_cnn --threads 1
"""
import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from trainer.config import config_dir  # noqa: E402
from trainer.data import split_indices  # noqa: E402
from trainer.metrics.running import RunningMetrics  # noqa: E402
from trainer.run.assemble import assemble  # noqa: E402
from trainer.run.interrupt import StopOnSignal  # noqa: E402
from trainer.run.loop import train_one_epoch  # noqa: E402
from trainer.run.tracking import Tracker  # noqa: E402

# steps per timed measurement: enough to dwarf timer noise, few enough that the whole table takes minutes on a CPU
STEPS = {("mlp", 128): 60, ("mlp", 4): 600, ("small_cnn", 128): 8, ("small_cnn", 4): 200,
         ("resnet18_transfer", 128): 4, ("resnet18_transfer", 4): 60}
SEED = 0


def compose_config(overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def samples_for(train_size, cfg):
    """How many samples data=synthetic needs so that its train split holds exactly `train_size`."""
    source = cfg.data.source
    total = train_size
    while len(split_indices(total, source.val_fraction, source.test_fraction, 0)[0]) < train_size:
        total += 1
    return total


def build_case(model_name, batch_size, optimizer, device, overrides=()):
    """The run a user would compose for this case, assembled by the trainer itself, with exactly STEPS full
    batches of training data."""
    case = ["data=synthetic", f"data.batch_size={batch_size}", f"optimizer={optimizer}", "trainer.progress=true",
            f"trainer.device={device}", f"model={model_name}", f"seed={SEED}"]
    # no weight download here, random weights cost the same time as ImageNet ones, and the bare loop runs the whole
    # network every step, so the trainer's side does too (scripts/bench_feature_cache.py measures the cache)
    case += ["model.weights=null", "model.cache_features=false"] if model_name.endswith("_transfer") else []
    cfg = compose_config(case + list(overrides))
    total = samples_for(STEPS[(model_name, batch_size)] * batch_size, cfg)
    return assemble(compose_config(case + [f"data.source.num_samples={total}"] + list(overrides)))


def write_images(folder, count, size, classes=10):
    """`count` JPEG files of size x size px in `classes` class folders (image_folder's layout): noise around a
    colour per class, so that they decode like photos rather than flat colour."""
    rng = np.random.default_rng(SEED)
    colours = rng.integers(40, 216, (classes, 3))
    for i in range(count):
        label = i % classes
        pixels = np.clip(colours[label] + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"class{label}" / f"{i:06d}.jpg", quality=90)


def build_files_case(model_name, batch_size, optimizer, device, overrides=(), *, root, cache, workers):
    """The run a user composes for image files: data=image_folder at the images' own size, cached or streamed."""
    case = ["data=image_folder", f"data.root={root}", f"data.cache={cache}", f"data.num_workers={workers}",
            f"data.batch_size={batch_size}", f"optimizer={optimizer}", "trainer.progress=true",
            f"trainer.device={device}", f"model={model_name}", f"seed={SEED}"]
    case += ["model.weights=null", "model.cache_features=false"] if model_name.endswith("_transfer") else []
    return assemble(compose_config(case + list(overrides)))


def trainer_epoch(parts, run_dir, window):
    """One epoch of the trainer's own loop on the run assemble() built, as trainer.train runs it."""
    cfg, device = parts.cfg, parts.runtime.device
    tracker = Tracker(run_dir)
    on_log = lambda step, values: tracker.scalars(values, step)
    timed = Timed(parts.loaders.train, window, device)

    def run():
        timed.times = []
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):  # the bars draw, out of sight
            metrics = RunningMetrics(device)
            train_one_epoch(parts.train_net, timed, objective=parts.objective, optimizer=parts.optimizer,
                            schedule=parts.schedule, metrics=metrics, runtime=parts.runtime,
                            total_steps=len(parts.loaders.train), desc="bench",
                            log_every=cfg.trainer.log_every_n_steps, on_log=on_log, stop=StopOnSignal())
            metrics.compute()
        return timed.windows()
    return run


def bare_epoch(parts, window):
    """The loop a user writes by hand: shuffle, slice, zero_grad, forward, loss, backward, step; float32, on a
    plain copy of the trainer's model (same weights, not converted or compiled)."""
    cfg, device = parts.cfg, parts.runtime.device
    x_all, y_all = (t.to(device) for t in parts.loaders.train.tensors)
    batch_size = cfg.data.batch_size
    model = instantiate(cfg.model).to(device)
    model.load_state_dict(parts.model.state_dict())
    criterion = nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    options = {k: v for k, v in cfg.optimizer.items() if k not in ("_target_", "_partial_")}
    optimizer = instantiate({"_target_": cfg.optimizer._target_, "_partial_": True})(params, **options)
    generator = torch.Generator().manual_seed(SEED)

    def batches():
        order = torch.randperm(len(y_all), generator=generator).to(device)
        for start in range(0, len(y_all), batch_size):
            idx = order[start:start + batch_size]
            yield x_all[idx], y_all[idx]

    timed = Timed(None, window, device)

    def run():
        timed.loader, timed.times = batches(), []
        model.train()
        for x, y in timed:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        return timed.windows()
    return run


class Timed:
    """Wraps a loader and records the time at every `window`-th batch it hands out: the time between two
    records is what the loop spent on `window` steps (fetch, step, its own bookkeeping)."""

    def __init__(self, loader, window, device):
        self.loader, self.window, self.device = loader, window, device
        self.times = []

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        count = 0
        for count, batch in enumerate(self.loader, start=1):
            if count % self.window == 1 or self.window == 1:
                self._record()
            yield batch
        if count % self.window == 0:  # the last window is complete too
            self._record()

    def _record(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()  # count what the GPU did, not what was queued
        self.times.append(time.perf_counter())

    def windows(self):
        """Durations of the complete windows of the last epoch."""
        return [b - a for a, b in zip(self.times, self.times[1:])]


def bench(model_name, batch_size, optimizer, device, repeats, run_dir, overrides, files=None):
    """Images/s of the trainer's loop and the bare loop (and, with `files` = {root, workers}, of the trainer's loop
    streaming the files), in alternation, and their ratios to the bare loop."""
    if files is None:
        trainers = {"trainer": build_case(model_name, batch_size, optimizer, device, overrides)}
    else:
        build = lambda cache, workers: build_files_case(model_name, batch_size, optimizer, device, overrides,
                                                        root=files["root"], cache=cache, workers=workers)
        trainers = {"trainer": build("true", 0), "streamed": build("false", files["workers"])}
    parts = trainers["trainer"]
    steps, log_every = len(parts.loaders.train), parts.cfg.trainer.log_every_n_steps
    window = log_every if steps >= 2 * log_every else 1
    runs = {name: trainer_epoch(each, run_dir, window) for name, each in trainers.items()}
    runs["bare"] = bare_epoch(parts, window)
    for run in runs.values():  # warm-up: allocator, kernels, optimizer state, lazy imports, worker processes
        run()
    times = {name: [] for name in runs}
    for i in range(repeats):
        names = list(runs)
        for name in names[i % len(names):] + names[:i % len(names)]:  # rotate who goes first
            times[name] += runs[name]()
    speed = {name: window * batch_size / low_percentile(t) for name, t in times.items()}
    return {"model": model_name, "batch": batch_size, "steps": steps, "window": window,
            "samples": len(times["bare"]), **speed,
            **{f"{name} ratio": speed[name] / speed["bare"] for name in trainers}}


def low_percentile(values, q=0.2):
    return sorted(values)[int(q * (len(values) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*",
                        help="config overrides for the trainer's side only, e.g. trainer.precision=bf16")
    parser.add_argument("--models", nargs="+", default=["small_cnn", "mlp", "resnet18_transfer"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 4])
    parser.add_argument("--optimizer", default="sgd", help="an option of conf/optimizer (default: the seeds' sgd)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7, help="timed measurements of each loop per case")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; 1 gives steadier numbers on a machine shared with other jobs")
    parser.add_argument("--image-files", type=int, default=0, help="N: train on N generated JPEG files instead")
    parser.add_argument("--image-size", type=int, default=32, help="the generated files' size in px")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader processes streaming the files")
    parser.add_argument("--processes", type=int, default=1,
                        help="N > 1: the whole measurement in N fresh processes in turn, and each row's median and "
                             "range over them (a process's buffers can land where a BLAS kernel runs slower)")
    args = parser.parse_args()
    if args.processes > 1:
        return over_processes(args.processes)
    logging.getLogger("trainer").setLevel(logging.WARNING)  # the runs' own log lines stay out of the table
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
          f"optimizer {args.optimizer}, {args.repeats} epochs each, 20th percentile of window times, "
          f"trainer overrides: {' '.join(args.overrides) or 'none'}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        files = None
        if args.image_files:
            files = {"root": Path(run_dir) / "images", "workers": args.workers}
            write_images(files["root"], args.image_files, args.image_size)
            print(f"{args.image_files} JPEG files of {args.image_size}x{args.image_size} px in 10 class folders; "
                  f"trainer: decoded once into memory (data.cache=true); streamed: read every epoch "
                  f"(data.cache=false, data.num_workers={args.workers})")
        print_header(files)
        for model_name in args.models:
            for batch_size in args.batch_sizes:
                row = bench(model_name, batch_size, args.optimizer, device, args.repeats, run_dir, args.overrides,
                            files)
                print_row(row, files)
    print(f"total {time.perf_counter() - started:.0f} s")


def over_processes(count):
    """Run this script `count` times as fresh processes, one after the other (its own arguments without
    --processes), print each run's table as it comes, then every row's median img/s and ratio with their range.
    docs/speed.md shows why: on a small batch, which of two speeds MKL's sgemm kernel runs at depends on the process,
    for the trainer's side and the bare loop's alike."""
    argv, skip = [], False
    for word in sys.argv[1:]:
        if skip or word.startswith("--processes"):
            skip = word == "--processes"
            continue
        argv.append(word)
    rows = {}
    for i in range(count):
        out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=True).stdout
        print(f"--- process {i + 1} of {count}\n{out}", end="", flush=True)
        for line in out.splitlines():
            words = line.split()
            if len(words) >= 7 and words[1].isdigit() and words[0] != "total":
                rows.setdefault((words[0], int(words[1])), []).append([float(w) for w in words[4:]])
    print(f"--- median over {count} processes (range of the ratio)")
    print(f"{'model':<20} {'batch':>5} {'trainer img/s':>14} {'bare img/s':>11} {'ratio':>6} {'range':>13}")
    for (model, batch), values in rows.items():
        trainer, bare, ratio = (statistics.median(column) for column in list(zip(*values))[:3])
        low, high = min(v[2] for v in values), max(v[2] for v in values)
        print(f"{model:<20} {batch:>5} {trainer:>14.0f} {bare:>11.0f} {ratio:>6.3f} {f'{low:.3f}-{high:.3f}':>13}")


def print_header(files):
    streamed = f" {'streamed img/s':>15} {'ratio':>6}" if files else ""
    print(f"{'model':<20} {'batch':>5} {'window':>6} {'windows':>7} {'trainer img/s':>14} {'bare img/s':>11} "
          f"{'ratio':>6}{streamed}")


def print_row(row, files):
    streamed = f" {row['streamed']:>15.0f} {row['streamed ratio']:>6.3f}" if files else ""
    print(f"{row['model']:<20} {row['batch']:>5} {row['window']:>6} {row['samples']:>7} {row['trainer']:>14.0f} "
          f"{row['bare']:>11.0f} {row['trainer ratio']:>6.3f}{streamed}", flush=True)


if __name__ == "__main__":
    main()
