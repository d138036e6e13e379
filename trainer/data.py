"""Datasets and the loaders that feed them to the loop.

A data config's `source` builds a `Splits` of three datasets. What the rest of the data config asks for is then
done here, the same way for every source (trainer/assemble.py calls it in this order): checks that the splits can
train a classifier, `data.cache` (decode each split once into memory), `data.normalize` (per-channel mean and std),
`data.label_noise` (training labels only) and the source's own train-time augmentation. Tensors that sit in memory
are served by `TensorLoader` (one indexing op per batch, no per-sample Python loop); anything else by a DataLoader
that shuffles in the same order, so caching a split changes the speed of a run, not its result.
"""
import contextlib
import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset, TensorDataset

from trainer.errors import UserError, first_line
from trainer.logs import log

CACHE_SETTINGS = ("auto", True, False)
STATISTICS_SAMPLES = 5000  # training samples data.normalize reads its statistics from (a seeded sample beyond that)
LABEL_NOISE_STREAM = 0x1ABE1  # mixed with `seed`: label noise draws from a random stream of its own


@dataclass
class Splits:
    train: Dataset | None  # None: left out (mode=eval builds the test split's loader only)
    val: Dataset | None
    test: Dataset
    classes: list | None = None  # class names, for datasets that have them (image folders, torchvision sets)
    image_size: int | None = None  # image sources: the side images are decoded to (data.image_size, or their own)
    augment: object = None  # image sources: a random transform of a training input, applied on access


def split_indices(n, val_fraction, test_fraction, seed):
    """Shuffle 0..n-1 once with `seed` and cut off test, then val; the rest trains. Same seed, same split.
    A fraction of None leaves that part empty, for datasets that bring their own val or test split."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if value is not None and not 0 < value < 1:
            raise UserError(f"data.source.{key}={value} must be between 0 and 1 (exclusive)")
    val_fraction, test_fraction = val_fraction or 0, test_fraction or 0
    if val_fraction + test_fraction >= 1:
        raise UserError("data.source.val_fraction + data.source.test_fraction must leave data to train on (sum < 1)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    for key, value, taken in (("val_fraction", val_fraction, n_val), ("test_fraction", test_fraction, n_test)):
        if value and not taken:
            raise UserError(f"data.source.{key}={value} of {n} samples leaves the {key.split('_')[0]} split empty: "
                            f"set data.source.{key} to at least {1 / n:.3g} or give the dataset more samples")
    if n_val + n_test >= n:
        raise UserError(f"data.source.val_fraction and data.source.test_fraction leave none of {n} samples to train "
                        "on: lower them or give the dataset more samples")
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def split_tensors(x, y, val_fraction, test_fraction, seed):
    """Shuffle once with `seed` and cut into train/val/test, so the same seed always gives the same split."""
    parts = split_indices(len(y), val_fraction, test_fraction, seed)
    train, val, test = (TensorDataset(x[idx], y[idx]) for idx in parts)
    return Splits(train=train, val=val, test=test)


def count_classes(num_classes, splits):
    """The number of classes: `data.num_classes`, or with `null` as many as the dataset names (image_folder reads
    them from its folders); a number that contradicts the dataset's own count is a UserError."""
    if splits.classes is None:
        if num_classes is None:
            raise UserError("data.num_classes=null needs a dataset that names its classes: set data.num_classes")
    elif num_classes is not None and num_classes != len(splits.classes):
        raise UserError(f"data.num_classes={num_classes} but the dataset has {len(splits.classes)} classes: "
                        "set data.num_classes=null to use the dataset's count")
    count = len(splits.classes) if splits.classes is not None else num_classes
    if count < 2:
        raise UserError(f"data.num_classes={count}: a classifier needs at least two classes")
    return count


def digits(*, val_fraction, test_fraction, seed):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixel values are 0..16
    y = torch.tensor(bunch.target, dtype=torch.long)
    return split_tensors(x, y, val_fraction, test_fraction, seed)


def iris(*, val_fraction, test_fraction, seed):
    from sklearn.datasets import load_iris

    bunch = load_iris()
    x = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.long)
    # measurements in cm on different scales: data.normalize standardises them with the training split's statistics
    return split_tensors(x, y, val_fraction, test_fraction, seed)


def synthetic(*, shape, num_classes, num_samples, noise, val_fraction, test_fraction, seed):
    """Each class is a fixed random pattern; a sample is its class pattern plus Gaussian noise of std `noise`."""
    if num_classes < 2 or num_samples < num_classes:
        raise UserError("data=synthetic needs data.num_classes >= 2 and data.source.num_samples >= data.num_classes")
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randn(num_classes, *shape, generator=generator)
    y = torch.arange(num_samples) % num_classes
    x = patterns[y] + noise * torch.randn(num_samples, *shape, generator=generator)
    return split_tensors(x, y, val_fraction, test_fraction, seed)


def diabetes(*, val_fraction, test_fraction, seed):
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, scaled=False)  # data.normalize standardises with the training split
    return split_tensors(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).unsqueeze(1),
                         val_fraction, test_fraction, seed)


def synthetic_regression(*, num_features, num_samples, noise, outlier_fraction, heavy_tail, val_fraction,
                         test_fraction, seed):
    """y = w.x + noise (or exp of it with `heavy_tail`), x standard normal; a fraction of the training targets is
    replaced by gross errors, the validation and test targets stay clean."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(num_samples, num_features, generator=generator)
    w = torch.randn(num_features, generator=generator) / num_features ** 0.5
    y = x @ w + noise * torch.randn(num_samples, generator=generator)
    y = (y.exp() if heavy_tail else y).unsqueeze(1)
    splits = split_tensors(x, y, val_fraction, test_fraction, seed)
    x_train, y_train = splits.train.tensors
    bad = torch.rand(len(y_train), generator=generator) < outlier_fraction
    signs = torch.randint(0, 2, (len(y_train), 1), generator=generator) * 2 - 1
    y_train = torch.where(bad.unsqueeze(1), y_train + signs * 10 * y.std(), y_train)
    return replace(splits, train=TensorDataset(x_train, y_train))


def target_statistics(splits):
    """data.target_stats of a regression: the training targets' mean and std in each loss space of trainer.losses
    (identity for MSE, MAE and Huber; log1p for MSLE, None when a target is -1 or below), as plain floats."""
    y = labels_of(splits.train).double()
    stats = lambda values: [values.mean().item(), max(values.std().item(), 1e-12)]
    return {"identity": stats(y), "log1p": stats(torch.log1p(y)) if bool((y > -1).all()) else None}


class TensorLoader:
    """Batches of in-memory tensors, cut by slicing a (shuffled) index: what a hand-written loop would do.

    A DataLoader over a TensorDataset indexes one sample at a time in Python and collates them, which costs
    more than a small model's whole step. On a GPU the tensors are moved there once, so a batch costs no copy.
    Under torchrun each rank serves every `world_size`-th sample of the (shared-seed) order, like a
    DistributedSampler; when shuffling (training) the order is padded by wrapping around so every rank takes the
    same number of steps, which DistributedDataParallel needs; otherwise (evaluation) the split is exact.
    """

    def __init__(self, dataset, *, batch_size, shuffle, generator=None, device=None, rank=0, world_size=1):
        self.tensors = tuple(t.to(device) for t in dataset.tensors) if device is not None else dataset.tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.rank, self.world_size = rank, world_size

    def _num_samples(self):
        n = len(self.tensors[0])
        if self.world_size == 1:
            return n
        return -(-n // self.world_size) if self.shuffle else len(range(self.rank, n, self.world_size))

    def __len__(self):
        return -(-self._num_samples() // self.batch_size)

    def _order(self):
        """This rank's sample indices for one pass, on the tensors' device; None means all, in order."""
        n = len(self.tensors[0])
        if not self.shuffle and self.world_size == 1:
            return None
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            if self.shuffle:
                total = self._num_samples() * self.world_size
                order = order.repeat(-(-total // n))[:total]
            order = order[self.rank::self.world_size]
        return order.to(self.tensors[0].device)

    def __iter__(self):
        return self.batches()

    def batches(self, skip=0):
        """This rank's batches for one pass, leaving out the first `skip`."""
        order = self._order()
        for start in range(skip * self.batch_size, self._num_samples(), self.batch_size):
            if order is None:  # contiguous slices are views: no copy at all
                yield [t[start:start + self.batch_size] for t in self.tensors]
            else:
                idx = order[start:start + self.batch_size]
                yield [t[idx] for t in self.tensors]


class Shuffle(Sampler):
    """A random order of a split drawn as TensorLoader draws it (`randperm` from `generator`), for a DataLoader: a
    split served from disk comes in the same order as the same split cached in memory. (A DataLoader's own
    RandomSampler draws from the generator after the DataLoader has taken its workers' base seed from it.)"""

    def __init__(self, size, generator):
        self.size, self.generator = size, generator

    def __len__(self):
        return self.size

    def __iter__(self):
        return iter(torch.randperm(self.size, generator=self.generator).tolist())


def make_loader(dataset, *, batch_size, shuffle, num_workers=0, seed=0, pin_memory=False, device=None, rank=0,
                world_size=1):
    """The loader for one split; shuffling order follows `seed` so a run is reproducible. In-memory tensors are
    moved to a CUDA `device` once; `rank`/`world_size` shard the split for a torchrun run (trainer/distributed.py)."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(dataset, TensorDataset):
        on_gpu = device if device is not None and torch.device(device).type == "cuda" else None
        return TensorLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, device=on_gpu, rank=rank,
                            world_size=world_size)
    sampler = Shuffle(len(dataset), torch.Generator().manual_seed(seed)) if shuffle else None
    if world_size > 1:
        # evaluation splits exactly (no sample twice); training pads so every rank takes as many steps
        sampler = (DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed) if shuffle
                   else range(rank, len(dataset), world_size))
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, generator=generator,
        pin_memory=pin_memory, persistent_workers=num_workers > 0,
    )


def epoch_batches(loader, seed, epoch, skip=0):
    """The loader's batches for `epoch`, leaving out the first `skip` (those a run interrupted mid-epoch already
    trained on). The shuffle order depends only on (seed, epoch), not on what ran before, so a resumed run sees
    exactly the batches an uninterrupted one would."""
    sampler = getattr(loader, "sampler", None)
    # the loader's own generator (TensorLoader's order; a DataLoader's worker seeds) and a Shuffle's
    for generator in (getattr(loader, "generator", None), getattr(sampler, "generator", None)):
        if generator is not None:
            generator.manual_seed(seed * 100_003 + epoch)
    if hasattr(sampler, "set_epoch"):  # a DistributedSampler (torchrun) seeds its shuffle with seed + epoch
        sampler.set_epoch(epoch)
    if isinstance(loader, TensorLoader):
        return loader.batches(skip)
    return itertools.islice(loader, skip, None)  # a DataLoader still loads the skipped batches, once


def labels_of(dataset):
    """All integer labels of a dataset, for the range check before training."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [dataset[i][1] for i in range(len(dataset))]
    return torch.as_tensor(targets)


# --- what the data config asks of every source ------------------------------------------------------------------


class MapInputs(Dataset):
    """`dataset` with `function` applied to each sample's input on access (normalisation, augmentation)."""

    def __init__(self, dataset, function):
        self.dataset, self.function = dataset, function

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return self.function(x), y

    @property
    def targets(self):
        return labels_of(self.dataset)


class Relabeled(Dataset):
    """`dataset` with its labels replaced by `targets` (data.label_noise on data not held in tensors)."""

    def __init__(self, dataset, targets):
        self.dataset, self.targets = dataset, targets

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i][0], self.targets[i]


def is_fraction(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1


def check_settings(cfg_data):
    """The data stage's keys, checked before any data is read; a mistake is one sentence naming the key."""
    noise = cfg_data.get("label_noise", 0)
    if not is_fraction(noise):
        raise UserError(f"data.label_noise={noise} is invalid: use the fraction of training labels to replace, "
                        "from 0 (none) up to but not including 1, e.g. data.label_noise=0.4")
    if cfg_data.get("normalize", False) not in (True, False):
        raise UserError(f"data.normalize={cfg_data.normalize} is invalid: use true or false")
    if cfg_data.get("mean") is not None and not cfg_data.get("normalize", False):
        raise UserError(f"data.mean={cfg_data.mean} is set but data.normalize=false: set data.normalize=true to use "
                        "it, or data.mean=null data.std=null")
    if (cfg_data.get("mean") is None) != (cfg_data.get("std") is None):
        raise UserError("data.mean and data.std go together: set both (e.g. data.mean=0.5 data.std=0.5) or neither "
                        "(null: the training split's statistics)")
    if cfg_data.get("cache", False) not in CACHE_SETTINGS:
        raise UserError(f"data.cache={cfg_data.cache} is not known: use auto, true or false")
    budget = cfg_data.get("cache_budget_gb", 0)
    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or budget < 0:
        raise UserError(f"data.cache_budget_gb={budget} is invalid: use the memory in GB that data.cache=auto may "
                        "fill with decoded images, e.g. data.cache_budget_gb=2")


def check_splits(splits, names, *, classifies=True):
    """Splits a model can learn from and be measured on: none of `names` empty, and for a classifier at least two
    classes among the training labels (one class "trains" to accuracy 1.0)."""
    for name in names:
        if getattr(splits, name) is None or len(getattr(splits, name)) == 0:
            raise UserError(f"the {name} split is empty: give it samples (data.source.{name}_fraction of a larger "
                            "dataset, or a dataset with more samples)")
    if "train" in names and classifies:
        labels = labels_of(splits.train)
        if len(labels.unique()) < 2:
            raise UserError(f"the train split holds samples of one class only (label {int(labels[0])}): a classifier "
                            "needs at least two; check data.root and data.source")


@contextlib.contextmanager
def worker_failures_explained():
    """A DataLoader worker that died (out of memory, a crashing library) as one sentence with the fix."""
    try:
        yield
    except RuntimeError as error:
        if "DataLoader worker" not in str(error):
            raise
        raise UserError(f"a DataLoader worker failed ({first_line(error)}): run with data.num_workers=0 to see the "
                        "error in the main process") from None


# --- data.cache -------------------------------------------------------------------------------------------------


def reader(dataset, num_workers):
    """One pass over a dataset in order, in batches of 256. Its own generator: a DataLoader draws its workers' seed
    from the global one otherwise, which would change the model's initialisation that follows."""
    return DataLoader(dataset, batch_size=256, num_workers=num_workers, generator=torch.Generator())


def in_memory(dataset, num_workers):
    """Every sample of a split, decoded once into one tensor (with `num_workers` processes decoding), written into
    place batch by batch so the decoded split is held once, not twice, while it is gathered."""
    x_all = y_all = None
    with worker_failures_explained():
        for start, (x, y) in zip(itertools.count(0, 256), reader(dataset, num_workers)):
            if x_all is None:
                x_all, y_all = torch.empty(len(dataset), *x.shape[1:]), torch.empty(len(dataset), dtype=torch.long)
            x_all[start:start + len(x)], y_all[start:start + len(x)] = x, torch.as_tensor(y)
    return TensorDataset(x_all, y_all)


def cache_plan(sizes, setting, budget_gb):
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


def cache_splits(splits, cfg_data, *, names):
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


def cache_reason(sizes, chosen, budget, num_workers):
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


def memory_text(size):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


# --- data.normalize ---------------------------------------------------------------------------------------------


class Standardize:
    """(x - mean) / std per channel (dimension `channel_dim` of x); a class, so DataLoader workers can take it."""

    def __init__(self, mean, std, channel_dim=0):
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)
        self.channel_dim = channel_dim

    def __call__(self, x):
        view = [1] * x.dim()
        view[self.channel_dim] = -1
        return (x - self.mean.view(view)) / self.std.view(view)


def channel_values(value, key, channels):
    """data.mean / data.std as one float per channel: a number or a one-item list is every channel's."""
    values = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "__len__") else [value]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numbers or len(values) not in (1, channels) or (key == "data.std" and min(values) <= 0):
        raise UserError(f"{key}={value} is invalid: give one number for every channel or one per channel "
                        f"({channels} here){', each > 0' if key == 'data.std' else ''}, or null for the training "
                        "split's statistics")
    return [float(v) for v in values] * (channels if len(values) == 1 else 1)


def channel_statistics(dataset, *, num_workers, seed):
    """Per-channel mean and (unbiased) std of a split's inputs, over all of it or, beyond STATISTICS_SAMPLES
    samples, a sample of that many drawn by seed; summed in float64. The sums read the same batches whether the
    split is in memory or on disk, so both give the same numbers. A channel without spread is left unscaled."""
    n = len(dataset)
    picked = torch.arange(n) if n <= STATISTICS_SAMPLES else torch.randperm(
        n, generator=torch.Generator().manual_seed(seed))[:STATISTICS_SAMPLES].sort().values
    workers = 0 if isinstance(dataset, TensorDataset) else num_workers
    total = squares = count = 0
    with worker_failures_explained():
        for x, _ in reader(Subset(dataset, picked.tolist()), workers):
            x = x.double().transpose(0, 1).flatten(1)  # channels x values
            total, squares, count = total + x.sum(1), squares + (x * x).sum(1), count + x.shape[1]
    mean = total / count
    std = ((squares - total * mean) / max(count - 1, 1)).clamp_min(0).sqrt()
    return mean.tolist(), torch.where(std > 1e-6, std, torch.ones_like(std)).tolist()


def normalized(splits, mean, std):
    """Every split's inputs standardised per channel with the given values (the training split's statistics, or
    data.mean/data.std): tensors in memory once, now; anything else on access."""
    def part(dataset):
        if dataset is None:
            return None
        if isinstance(dataset, TensorDataset):
            x, y = dataset.tensors
            return TensorDataset(Standardize(mean, std, channel_dim=1)(x), y)
        return MapInputs(dataset, Standardize(mean, std))

    return replace(splits, train=part(splits.train), val=part(splits.val), test=part(splits.test))


# --- data.label_noise -------------------------------------------------------------------------------------------


def noisy_labels(labels, *, fraction, num_classes, seed):
    """`labels` with exactly round(fraction * n) of them, chosen by seed, each replaced by a class drawn uniformly
    from the other num_classes - 1 (a shift of 1..num_classes-1, modulo num_classes). The draws come from a stream
    of their own, so the run's other random numbers are those of a clean run."""
    rng = np.random.default_rng([LABEL_NOISE_STREAM, seed % 2**64])  # entropy must be >= 0
    chosen = torch.from_numpy(rng.permutation(len(labels))[:round(fraction * len(labels))])
    shift = torch.from_numpy(rng.integers(1, num_classes, size=len(chosen)))
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % num_classes
    return noisy


def with_label_noise(splits, fraction, *, num_classes, seed):
    """data.label_noise: the training split with a `fraction` of its labels wrong; val and test stay clean."""
    if not fraction:
        return splits
    labels = noisy_labels(labels_of(splits.train).long(), fraction=fraction, num_classes=num_classes, seed=seed)
    train = (TensorDataset(splits.train.tensors[0], labels) if isinstance(splits.train, TensorDataset)
             else Relabeled(splits.train, labels))
    log.info(f"data.label_noise={fraction}: {int((labels != labels_of(splits.train)).sum())} of {len(labels)} "
             "training labels replaced by another class")
    return replace(splits, train=train)


def augmented(splits):
    """The source's random train-time transform (data.augment), applied on access after caching and normalising
    (a random crop and flip commute with a per-channel affine map, so the order does not change the values)."""
    if splits.augment is None or splits.train is None:
        return splits
    return replace(splits, train=MapInputs(splits.train, splits.augment), augment=None)  # applied: not twice
