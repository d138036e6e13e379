"""Checkpoints and resuming: what a checkpoint holds, writing and reading it safely, where a run stands
(`Progress`), how a run is restored from one, and which config changes a resume refuses.

A checkpoint is one dict of plain containers and tensors, so `torch.load(path, weights_only=True)` reads it and
loading can never run code: `model`, `optimizer`, `scheduler`, `scaler` state dicts, `progress` (where the run
stands), `rng` (every generator's state), `config` (the resolved config, as values), `classes`, `versions` and
`format`.
"""
from __future__ import annotations

import io
import os
import platform
import random
import shutil
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

import yaml

from trainer.config import config_dir, option_of, with_moved_targets
from trainer.errors import UserError, first_line
from trainer.run.rundir import NO_SPACE, cannot_make, make_folder
from trainer.runtime import distributed
from trainer.safe_load import load_pt

if TYPE_CHECKING:
    from trainer.run.assemble import Assembly

FORMAT = 2  # 1: before `progress` held the only copy of epoch, global_step and best (still loads)
RUN_KEYS = ("model", "optimizer", "scheduler", "progress", "rng", "config")  # what a run's checkpoint holds
RESUMABLE_SECTIONS = ("data", "model", "loss", "optimizer", "scheduler", "seed")  # must match to resume
# keys of those sections that change how a run is scored, not what it learns: a resume may change them, and
# checkpoints written before they existed still resume
SCORING_ONLY = ("loss.probabilities",)


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint so a resumed run carries on from exactly there."""
    epoch: int = 0             # epochs finished
    step: int = 0              # steps of epoch `epoch + 1` already trained (a run stopped mid-epoch)
    global_step: int = 0       # steps trained in all: TensorBoard's x axis
    partial: dict = None       # the metric sums of that unfinished epoch
    best_value: float = None   # the best validation value so far (metrics.BEST says which metric)
    best_epoch: int = 0
    history: list = field(default_factory=list)  # one dict of metrics per finished epoch
    epoch_lr: float = None     # the rate epoch `epoch + 1` began at (its history row's lr, also when resumed midway)
    chosen: dict = None        # optimizer.lr=auto or tune: the rate chosen and the search's budget (metrics.json)

    @classmethod
    def from_state(cls, state: dict) -> Progress:
        """The Progress stored in a checkpoint, also one written before FORMAT 2."""
        stored = dict(state["progress"])
        if "best" in stored:  # format 1: best = {"val_acc", "epoch"}, -1.0 before any epoch
            best = stored.pop("best")
            stored["best_value"] = best["val_acc"] if best["epoch"] else None
            stored["best_epoch"] = best["epoch"]
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in stored.items() if key in known})


# --- files ------------------------------------------------------------------------------------------------------

def save(state: dict, *paths: str | Path) -> None:
    """Write `state` to every path atomically: a killed process or a full disk leaves the previous file intact, never
    a half-written one. Serialised and written once; further paths are hard links to the same file, made before the
    rename.

    Raises:
        UserError: the system refused the write (a full disk, `ulimit -f`, a read-only folder), naming the file.
    """
    write(serialised(state), *paths)


def serialised(state: dict) -> bytes:
    """The bytes torch.save writes for `state`: the state as it is now, whatever training does to it next."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


class Saver:
    """Writes a run's checkpoints while training goes on: the state is serialised at once, the file written, synced to
    the disk and renamed into place by a thread (the disk's wait is most of what a small model's checkpoint costs).
    One checkpoint is in flight at a time; `wait` before reading one, or before the run ends or stops."""

    def __init__(self) -> None:
        self.thread, self.error = None, None

    def save(self, state: dict, *paths: str | Path) -> None:
        data = serialised(state)
        self.wait()
        self.thread = threading.Thread(target=self._write, args=(data, paths), name="checkpoint")
        self.thread.start()

    def _write(self, data, paths):
        try:
            write(data, *paths)
        except BaseException as error:  # raised where the run waits for it
            self.error = error

    def finish(self) -> None:
        """Until the checkpoint in flight is on disk, whatever stopped the run (which is the error to report)."""
        if self.thread is not None:
            self.thread.join()

    def wait(self) -> None:
        """Until the checkpoint in flight is on disk; its error, if writing it failed."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def write(data: bytes, *paths: str | Path) -> None:
    """`data` into every path atomically (a temporary file, fsync, rename); further paths are hard links."""
    paths = [Path(p) for p in paths]
    tmps = [path.with_name(path.name + ".tmp") for path in paths]
    try:
        for path in paths:
            make_folder(path.parent, key="hydra.run.dir")
        with open(tmps[0], "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for tmp in tmps[1:]:
            link_or_copy(tmps[0], tmp)
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        # torch reports a failed write as a RuntimeError ("unexpected pos") raised while handling the OSError
        system = error if isinstance(error, OSError) else error.__context__
        if not isinstance(system, OSError):
            raise
        if system.errno not in NO_SPACE:
            raise cannot_make(paths[0], system, key="hydra.run.dir") from None
        then = (f"{paths[0]} keeps the earlier checkpoint, so make room and continue with ckpt_path={paths[0]}"
                if paths[0].is_file() else "no checkpoint was written, so make room and run the same command again")
        raise UserError(f"{paths[0]} cannot be written ({system.strerror}; see `df -h` and `ulimit -f`): "
                        f"{then}") from None
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)


def load(path: str | Path, key: str = "ckpt_path", required: Sequence[str] = RUN_KEYS) -> dict:
    """A checkpoint, loaded with weights_only=True (trainer/safe_load.py), so it can never run code on load, and its
    stored config brought up to date (upgraded_config): targets that moved since it was written renamed (MOVED_TARGETS
    in trainer/config/stored.py), keys added since filled with the value that reproduces how it was trained, and
    those listed under "legacy". `required`: the entries it must have (a run's checkpoint by default).

    Raises:
        UserError: the file is missing, unsafe, corrupt, or not a checkpoint of a losslab run.
    """
    state = load_pt(path, key=key)
    missing = [name for name in required if not isinstance(state, dict) or name not in state]
    if missing:
        raise UserError(f"{key}={path} is not a checkpoint of a losslab run (it lacks {', '.join(missing)}): "
                        "point it at RUN_DIR/checkpoints/last.pt or best.pt")
    if "config" in required:
        config = state["config"]
        lacks = [part for part in RUN_SECTIONS if not isinstance(config, dict) or not isinstance(config.get(part), dict)]
        if lacks:
            raise UserError(f"{key}={path} is not a checkpoint of a losslab run (its config lacks "
                            f"{', '.join(lacks)}): point it at RUN_DIR/checkpoints/last.pt or best.pt")
        state["config"], state["legacy"] = upgraded_config(config)  # "legacy": in memory only
    return state


RUN_SECTIONS = ("data", "model", "loss", "optimizer", "trainer")  # what every run's stored config holds


def upgraded_config(config: dict) -> tuple[dict, dict]:
    """A stored config as today's losslab reads it, and {dotted key: value} of what was filled in. The targets that
    moved are renamed; the keys losslab gained since, whose default would change what the checkpoint was trained on,
    are filled with the value it was trained with (LEGACY_VALUES), in its data source too when today's option passes
    the key there. A resumed run takes the filled values, so it continues on the data it was trained on."""
    config, filled = with_moved_targets(config), {}
    data = config.get("data")
    for key, value in LEGACY_VALUES.items():
        if not isinstance(data, dict) or key in data:
            continue
        data[key] = filled[f"data.{key}"] = value
        source, option = data.get("source"), option_of("data", data)
        if isinstance(source, dict) and option and key in (declared_option("data", option).get("source") or {}):
            source[key] = value
    return config, filled


# Keys of the data config losslab gained after checkpoints were written, with the value that reproduces how those
# were trained: before data.split, every dataset was split at random.
LEGACY_VALUES = {"split": "random"}


def declared_option(group: str, option: str) -> dict:
    """conf/GROUP/OPTION.yaml as written (not composed)."""
    return yaml.safe_load((config_dir() / group / f"{option}.yaml").read_text()) or {}


# --- what goes in, and how a run comes back out -----------------------------------------------------------------

def run_state(parts: Assembly, progress: Progress) -> dict[str, object]:
    """The checkpoint of an assembled run (trainer.run.assemble.Assembly) at `progress`."""
    scaler = parts.runtime.precision.scaler
    return {"format": FORMAT, "model": parts.model.state_dict(), "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.schedule.state_dict(), "scaler": None if scaler is None else scaler.state_dict(),
            "progress": asdict(progress), "rng": rng_state(), "config": parts.config, "classes": parts.classes,
            "versions": versions()}


def save_run(parts: Assembly, progress: Progress, *paths: str | Path, saver: Saver) -> None:
    """The run's checkpoint at `progress`, into `paths`, written by `saver` (under torchrun by rank 0 only)."""
    if distributed.is_main():
        saver.save(run_state(parts, progress), *paths)


def restore(state: dict, parts: Assembly, ckpt_path: str | Path) -> Progress:
    """Put an assembled run back where `state` left it: the epoch-start hooks of the epochs already begun (so the
    optimizer has the parameter groups it saved), weights, optimizer, schedule, scaler, and last every random
    generator, because building the run consumed random numbers. Returns the Progress to continue from."""
    progress = Progress.from_state(state)
    for begun in range(1, progress.epoch + 1 + (progress.step > 0)):
        parts.on_epoch_start(begun)
    try:
        parts.model.load_state_dict(state["model"])
        parts.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"ckpt_path={ckpt_path} does not fit this model and optimizer ({first_line(error)})") from None
    parts.schedule.load_state_dict(state["scheduler"])
    scaler = parts.runtime.precision.scaler
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    restore_rng(state["rng"])
    return progress


ABSENT = "(absent)"  # a key one of two configs lacks: a key losslab's config gained after a checkpoint was written


def differences(old: object, new: object, prefix: str = "") -> list[tuple[str, object, object]]:
    """Dotted keys whose values differ between two plain config containers, as (key, old, new)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new), key=str)
                for d in differences(old.get(key, ABSENT), new.get(key, ABSENT), f"{prefix}{key}.")]
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def check_resumable(stored: dict, current: dict, ckpt_path: str | Path, *, done_epochs: int,
                    before_data: bool = False) -> None:
    """Refuse to continue a checkpoint with another model, data, loss, optimizer, schedule or seed, or with fewer
    epochs than it has trained, or with another length under a schedule planned over the run's length. Both configs
    are plain containers of values; the stored one is only compared, never built. `before_data`: the check before the
    run is assembled, when a value the config leaves null (data.num_classes) is not yet read from the data; after
    assembly the check runs again on everything. A key the stored config lacks (added to losslab after the checkpoint
    was written, e.g. data.label_noise) is not compared: the resumed run uses today's value."""
    epochs, trained_for = current["trainer"]["epochs"], stored["trainer"]["epochs"]
    if epochs < done_epochs:
        raise UserError(f"ckpt_path={ckpt_path} has already trained {done_epochs} epochs, so trainer.epochs={epochs} "
                        f"cannot continue it: resume with trainer.epochs={done_epochs} or more")
    if epochs != trained_for and stored["scheduler"].get("spans_run"):
        raise UserError(f"ckpt_path={ckpt_path} plans its learning rate over trainer.epochs={trained_for} (its "
                        f"scheduler spans the run), so a resume cannot change the run's length: resume with "
                        f"trainer.epochs={trained_for}, or start a new run with trainer.epochs={epochs}")
    changed = [d for section in RESUMABLE_SECTIONS
               for d in differences(stored.get(section), current.get(section), f"{section}.")
               if d[1] is not ABSENT and not (before_data and d[2] is None) and d[0] not in SCORING_ONLY]
    if changed:
        raise UserError(f"ckpt_path={ckpt_path} was trained {first_difference(changed, stored, current)}: resume with "
                        "the run's own overrides (its .hydra/overrides.yaml); only trainer.* keys such as "
                        "trainer.epochs may change")


def first_difference(changed: Sequence[tuple[str, object, object]], stored: dict, current: dict) -> str:
    """What a user most needs to hear of the differences between two configs: another option of a group (data=iris,
    not data=digits), else a built target before the settings that go with it, in RESUMABLE_SECTIONS' order (the
    dataset first)."""
    for group in RESUMABLE_SECTIONS:
        if isinstance(stored.get(group), dict) and isinstance(current.get(group), dict):
            old, new = option_of(group, stored[group]), option_of(group, current[group])
            if old and new and old != new:
                return f"on {group}={old}, not {group}={new}"
    key, old, new = min(changed, key=lambda d: not d[0].endswith("_target_"))  # the first target, else the first
    return f"with {key}={old}, not {new}"


# --- random generators ------------------------------------------------------------------------------------------

def rng_state() -> dict[str, object]:
    """Python, NumPy and torch (CPU and every CUDA device) generator states, as tensors and plain containers so
    that a weights_only load accepts them."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def versions() -> dict[str, str]:
    import hydra

    return {"python": platform.python_version(), "torch": str(torch.__version__), "hydra": hydra.__version__,
            "numpy": np.__version__}
