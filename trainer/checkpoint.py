"""Checkpoints: one dict with everything needed to evaluate or continue a run, as plain containers."""
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from trainer.errors import UserError, first_line


def save(state, path):
    """Write atomically: a killed process leaves the previous file intact, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


RUN_KEYS = ("model", "optimizer", "scheduler", "epoch", "progress", "rng", "config")  # what a run's checkpoint holds


def load(path, key="ckpt_path", required=RUN_KEYS):
    """Load with weights_only=True, so a checkpoint can never run code on load. `required`: the entries it must
    have (a run's checkpoint by default; a plain state-dict file passes none)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{key}={path} does not exist: point {key} at a checkpoint such as RUN_DIR/checkpoints/best.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated, corrupt or unsafe files
        raise UserError(f"{key}={path} could not be loaded as a safe checkpoint ({first_line(error)})") from None
    missing = [name for name in required if not isinstance(state, dict) or name not in state]
    if missing:
        raise UserError(f"{key}={path} is not a checkpoint of a losslab run (it lacks {', '.join(missing)}): "
                        "point it at RUN_DIR/checkpoints/last.pt or best.pt")
    return state


def rng_state():
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


def restore_rng(state):
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def versions():
    import hydra

    return {"python": platform.python_version(), "torch": str(torch.__version__), "hydra": hydra.__version__,
            "numpy": np.__version__}


def weights_are_finite(model):
    # one sync for the whole model: a nan/inf anywhere must never replace a good checkpoint
    return bool(torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all())
