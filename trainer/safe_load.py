"""Reading a .pt file that someone may have handed the user (a checkpoint, a weights file): always with
`torch.load(..., weights_only=True)`, so only tensors and plain containers come out and loading can never run code;
a missing, truncated, corrupt or unsafe file is one sentence naming the key that pointed at it."""
import re
from pathlib import Path

import torch

from trainer.config.paths import check_file
from trainer.errors import UserError, first_line


def load_pt(path: str | Path, *, key: str) -> object:
    """The content of the .pt file at `path`, on the CPU.

    Raises:
        UserError: the file is missing, a folder or unreadable, or torch cannot load it as tensors and plain
            containers (naming `key`).
    """
    path = check_file(path, key, fix=f"point {key} at a .pt file"
                      + (" such as RUN_DIR/checkpoints/best.pt" if key == "ckpt_path" else ""))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated, corrupt or unsafe files
        raise UserError(f"{key}={path} {what_it_holds(error)}") from None


def what_it_holds(error: Exception) -> str:
    """What a file torch.load(weights_only=True) refused holds, from torch's error (whose own text is a page that
    advises weights_only=False, the one thing losslab never does): Python objects beyond tensors and plain
    containers (a whole pickled model, or code), or no readable PyTorch data at all."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # torch's message carries terminal colours
    if "Weights only load failed" in text:
        named = re.search(r"GLOBAL ([\w.]+)", text)
        found = f" (it names {named.group(1)})" if named else ""
        return (f"holds Python objects besides tensors and plain containers{found}, such as a whole pickled model "
                "(torch.save(model)) or code, which losslab never unpickles because loading them can run code: save "
                "the weights with torch.save(model.state_dict(), PATH) and point at that file")
    return (f"is not a PyTorch file that can be read: it is empty, truncated or something else "
            f"({first_line(text) if text.strip() else type(error).__name__}); save it again with torch.save")
