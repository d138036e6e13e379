"""data.cache: decode a split once into memory (float32 tensors), within data.cache_budget_gb for `auto`. Decoding
every file up front also finds an unreadable one before training."""
from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset, TensorDataset

from trainer.data.loaders import reader, worker_failures_explained
from trainer.logs import log

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from omegaconf import DictConfig

    from trainer.data.splits import Splits


def in_memory(dataset: Dataset, num_workers: int) -> TensorDataset:
    """Every sample of a split, decoded once into one tensor (with `num_workers` processes decoding), written into
    place batch by batch so the decoded split is held once, not twice, while it is gathered."""
    x_all = y_all = None
    with worker_failures_explained():
        for start, (x, y) in zip(itertools.count(0, 256), reader(dataset, num_workers)):
            if x_all is None:
                x_all, y_all = torch.empty(len(dataset), *x.shape[1:]), torch.empty(len(dataset), dtype=torch.long)
            x_all[start:start + len(x)], y_all[start:start + len(x)] = x, torch.as_tensor(y)
    return TensorDataset(x_all, y_all)


def cache_plan(sizes: Mapping[str, int], setting: bool | str, budget_gb: float) -> list[str]:
    """The splits to decode into memory: every one for data.cache=true, none for false; for auto, in the order
    train, val, test (the first two are read every epoch), each that still fits the budget."""
    if setting != "auto":
        return list(sizes) if setting else []
    chosen, left = [], budget_gb * 1e9
    for name, size in sizes.items():
        if size <= left:
            chosen.append(name)
            left -= size
    return chosen


def cache_splits(splits: Splits, cfg_data: DictConfig, *, names: Sequence[str]) -> Splits:
    """data.cache: the splits `names` that are not in memory yet, decoded into tensors once (the plan above). The
    choice and its reason are logged. Decoding every file up front also finds an unreadable one before training."""
    on_disk = {name: getattr(splits, name) for name in names if not isinstance(getattr(splits, name), TensorDataset)}
    if not on_disk:
        return splits
    values = math.prod(cfg_data.shape)
    sizes = {name: len(dataset) * values * 4 for name, dataset in on_disk.items()}  # float32
    setting, budget = cfg_data.get("cache", False), cfg_data.get("cache_budget_gb", 0)
    chosen = cache_plan(sizes, setting, budget)
    if setting == "auto":
        log.info(cache_reason(sizes, chosen, budget, cfg_data.num_workers))
    return replace(splits, **{name: in_memory(on_disk[name], cfg_data.num_workers) for name in chosen})


def cache_reason(sizes: Mapping[str, int], chosen: list[str], budget: float, num_workers: int) -> str:
    """One log line: which splits data.cache=auto decodes into memory and which it reads from disk, and why."""
    amount = lambda names: memory_text(sum(sizes[name] for name in names))
    listed = lambda names: " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    streamed = [name for name in sizes if name not in chosen]
    said = [f"{listed(chosen)} ({amount(chosen)}) fit data.cache_budget_gb={budget}: decoded once into memory"
            ] if chosen else []
    if streamed:
        said.append(f"{listed(streamed)} ({amount(streamed)}) would not fit"
                    f"{' too' if chosen else f' data.cache_budget_gb={budget}'}: read from disk on every pass with "
                    f"data.num_workers={num_workers}")
    return "data.cache=auto: " + "; ".join(said)


def memory_text(size: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"
