"""A run, from a composed config to its folder's files:

- `assemble`: one assembly of a run (data stage, model, objective, loaders, optimizer, schedule, runtime), with
  `probe` checking model and loss on one batch first;
- `train` (a training run, top to bottom), `loop` (one epoch, one evaluation pass), `evaluation` (mode=eval),
  `lr_find` (the learning-rate range test and optimizer.lr=auto), `divergence` (a loss or weights gone non-finite);
- `checkpoint` (what a checkpoint holds, safe files, resume), `rundir` (which folder a run writes into, making it and
  its system errors, status.json, metrics.json), `interrupt` (Ctrl-C and SIGTERM at any moment), `tracking`
  (TensorBoard), `figures` and `top_losses` (the run's pictures).

The names below load their module on first use: the CLI decides a run's folder (rundir, interrupt) before torch is
imported, and `train --help` never imports it.
"""
from trainer._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "Assembly": "assemble", "assemble": "assemble", "train": "train", "evaluate_checkpoint": "evaluation",
    "run_lr_find": "lr_find", "Progress": "checkpoint", "Place": "rundir", "place": "rundir",
    "FolderCallback": "rundir", "Interrupted": "interrupt", "StopOnSignal": "interrupt", "Tracker": "tracking",
})
