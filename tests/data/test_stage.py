"""Datasets in memory and the loaders that serve them: reproducible splits, batches by slicing, the per-epoch shuffle
a resumed run repeats, the shards of a torchrun run; and what the data stage does to every source: statistics and
normalisation, the cache plan, label noise and the checks of the splits."""
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from tests.conftest import TINY, compose_config, run
from trainer.config import build
from trainer.data import normalization as data_module
from trainer.data import Splits, TensorLoader, epoch_batches, make_loader, split_indices
from trainer.data.cache import cache_plan
from trainer.data.labels import noisy_labels, with_label_noise
from trainer.data.normalization import channel_statistics, channel_values, normalized
from trainer.data.splits import check_splits, count_classes
from trainer.data.stage import check_settings
from trainer.errors import UserError


def served(loader):
    return [int(i) for x, _ in loader for i in x]


def test_a_split_is_disjoint_covers_everything_and_follows_the_seed():
    train, val, test = split_indices(100, 0.15, 0.15, seed=3)
    assert (len(train), len(val), len(test)) == (70, 15, 15)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(100))
    assert torch.equal(split_indices(100, 0.15, 0.15, seed=3)[1], val)
    assert not torch.equal(split_indices(100, 0.15, 0.15, seed=4)[1], val)


@pytest.mark.parametrize("n,val,test,says", [
    (10, 0, 0.1, "data.source.val_fraction=0 must be between 0 and 1"),
    (10, 0.6, 0.5, "must leave data to train on"),
    (5, 0.05, 0.2, "data.source.val_fraction=0.05 of 5 samples leaves the val split empty: set "
                   "data.source.val_fraction to at least 0.2 or give the dataset more samples"),
    (3, 0.4, 0.1, "data.source.test_fraction=0.1 of 3 samples leaves the test split empty"),
    (2, 0.4, 0.4, "leave none of 2 samples to train on"),
])
def test_fractions_that_leave_a_split_empty_are_one_sentence_naming_the_key(n, val, test, says):
    with pytest.raises(UserError, match=says) as error:
        split_indices(n, val, test, seed=0)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("data,shape,classes", [("digits", (1, 8, 8), 10), ("iris", (4,), 3),
                                                ("synthetic", (3, 32, 32), 10)])
def test_each_in_memory_source_gives_three_splits_of_its_declared_shape(data, shape, classes):
    cfg = compose_config([f"data={data}"])
    splits = build(cfg.data.source, "data", seed=0)
    assert tuple(splits.train.tensors[0].shape[1:]) == shape == tuple(cfg.data.shape)
    assert set(splits.train.tensors[1].tolist()) == set(range(classes)) == set(range(cfg.data.num_classes))


def test_count_classes_takes_the_datasets_count_or_checks_a_given_one():
    named = Splits(train=None, val=None, test=None, classes=["a", "b"])
    assert count_classes(None, named) == 2 and count_classes(2, named) == 2
    assert count_classes(5, Splits(train=None, val=None, test=None)) == 5
    with pytest.raises(UserError, match="data.num_classes=3 but the dataset has 2 classes"):
        count_classes(3, named)
    with pytest.raises(UserError, match="data.num_classes=null needs a dataset that names its classes"):
        count_classes(None, Splits(train=None, val=None, test=None))
    with pytest.raises(UserError, match="data.num_classes=1: a classifier needs at least two classes"):
        count_classes(None, Splits(train=None, val=None, test=None, classes=["only"]))


def test_tensor_loader_slices_batches_and_skips_the_ones_already_trained():
    data = TensorDataset(torch.arange(10), torch.zeros(10, dtype=torch.long))
    loader = make_loader(data, batch_size=4, shuffle=False)
    assert isinstance(loader, TensorLoader) and len(loader) == 3
    assert [x.tolist() for x, _ in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [x.tolist() for x, _ in loader.batches(skip=2)] == [[8, 9]]


def test_the_shuffle_of_an_epoch_depends_only_on_seed_and_epoch():
    data = TensorDataset(torch.arange(20), torch.zeros(20, dtype=torch.long))
    loader = make_loader(data, batch_size=5, shuffle=True, seed=1)
    first = [x.tolist() for x, _ in epoch_batches(loader, seed=1, epoch=2)]
    list(epoch_batches(loader, seed=1, epoch=1))  # whatever ran before
    assert [x.tolist() for x, _ in epoch_batches(loader, seed=1, epoch=2)] == first
    assert [x.tolist() for x, _ in epoch_batches(loader, seed=1, epoch=2, skip=3)] == first[3:]
    assert [x.tolist() for x, _ in epoch_batches(loader, seed=1, epoch=3)] != first


def test_training_shards_cover_every_sample_and_take_equal_steps():
    data = TensorDataset(torch.arange(10), torch.zeros(10, dtype=torch.long))
    shards = [make_loader(data, batch_size=2, shuffle=True, seed=3, rank=rank, world_size=3) for rank in range(3)]
    assert [len(shard) for shard in shards] == [2, 2, 2]
    samples = [served(shard) for shard in shards]
    assert all(len(s) == 4 for s in samples)  # 10 samples padded to 12 by wrapping around
    assert set(sum(samples, [])) == set(range(10))


def test_evaluation_shards_split_exactly():
    data = TensorDataset(torch.arange(7), torch.zeros(7, dtype=torch.long))
    samples = [served(make_loader(data, batch_size=2, shuffle=False, rank=rank, world_size=2)) for rank in range(2)]
    assert sorted(sum(samples, [])) == list(range(7))


class Numbers(Dataset):  # not in memory as tensors: served by a DataLoader
    def __len__(self):
        return 9

    def __getitem__(self, i):
        return torch.tensor(i), torch.tensor(0)


def test_dataloader_shards_use_a_distributed_sampler_for_training_and_exact_splits_for_evaluation():
    train_shards = [make_loader(Numbers(), batch_size=2, shuffle=True, rank=rank, world_size=2) for rank in range(2)]
    assert [len(served(s)) for s in train_shards] == [5, 5]
    assert set(served(train_shards[0]) + served(train_shards[1])) == set(range(9))
    eval_shards = [make_loader(Numbers(), batch_size=2, shuffle=False, rank=rank, world_size=2) for rank in range(2)]
    assert sorted(served(eval_shards[0]) + served(eval_shards[1])) == list(range(9))


class Served(Dataset):
    """The samples of a TensorDataset, one at a time, as a dataset read from disk serves them."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.targets = tensors.tensors[1]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.tensors[i]


def test_a_shuffled_split_on_disk_comes_in_the_same_order_as_in_memory_every_epoch():
    data = TensorDataset(torch.arange(23), torch.zeros(23, dtype=torch.long))
    memory, disk = (make_loader(d, batch_size=4, shuffle=True, seed=5) for d in (data, Served(data)))
    for epoch in (1, 2):
        assert served(epoch_batches(disk, seed=5, epoch=epoch)) == served(epoch_batches(memory, seed=5, epoch=epoch))
    assert served(epoch_batches(disk, seed=5, epoch=1)) != served(epoch_batches(disk, seed=5, epoch=2))


# --- data.normalize ---------------------------------------------------------------------------------------------


def images(n=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 4, 4, generator=generator) * torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1, 1) + 1
    return TensorDataset(x, torch.arange(n) % 2)


def test_channel_statistics_are_each_channels_mean_and_std_over_the_split():
    data = images()
    mean, std = channel_statistics(data, num_workers=0, seed=0)
    x = data.tensors[0].double()
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist(), rel=1e-12)
    assert std == pytest.approx(x.transpose(0, 1).reshape(3, -1).std(dim=1).tolist(), rel=1e-12)
    tabular = TensorDataset(torch.tensor([[1.0, 10.0], [3.0, 30.0]]), torch.tensor([0, 1]))  # per feature
    mean, std = channel_statistics(tabular, num_workers=0, seed=0)
    assert mean == [2.0, 20.0] and std == pytest.approx([2 ** 0.5, 200 ** 0.5], rel=1e-15)


def test_statistics_are_the_same_numbers_whether_a_split_is_in_memory_or_read_from_disk(monkeypatch):
    data = images(n=50)
    assert channel_statistics(data, num_workers=0, seed=3) == channel_statistics(Served(data), num_workers=0, seed=3)
    monkeypatch.setattr(data_module, "STATISTICS_SAMPLES", 20)  # beyond it: a sample drawn by seed, the same for both
    sampled = channel_statistics(data, num_workers=0, seed=3)
    assert sampled == channel_statistics(Served(data), num_workers=2, seed=3)
    assert sampled != channel_statistics(data, num_workers=0, seed=4)


def test_a_channel_without_spread_is_left_unscaled():
    constant = TensorDataset(torch.full((6, 2), 3.0), torch.arange(6) % 2)
    assert channel_statistics(constant, num_workers=0, seed=0) == ([3.0, 3.0], [1.0, 1.0])


def test_every_split_is_normalised_with_the_same_values_in_memory_and_on_access():
    train, val = images(seed=0), images(n=8, seed=1)
    mean, std = [1.5, 2.0, 3.0], [0.25, 0.5, 1.0]
    splits = normalized(Splits(train=train, val=val, test=Served(val)), mean, std)
    expected = (val.tensors[0] - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.equal(splits.val.tensors[0], expected)
    assert torch.equal(torch.stack([splits.test[i][0] for i in range(8)]), expected)  # bit for bit
    assert torch.equal(splits.train.tensors[1], train.tensors[1])


@pytest.mark.parametrize("value,key,says", [
    (0.5, "data.mean", None), ([0.5], "data.std", None), ([0.1, 0.2, 0.3], "data.mean", None),
    ([0.1, 0.2], "data.mean", "data.mean=[0.1, 0.2] is invalid: give one number for every channel or one per channel "
                              "(3 here)"),
    (0, "data.std", "one per channel (3 here), each > 0"),
    ("x", "data.mean", "data.mean=x is invalid"),
])
def test_given_normalisation_values_are_one_per_channel_or_one_for_all(value, key, says):
    if says is None:
        assert len(channel_values(value, key, 3)) == 3
    else:
        with pytest.raises(UserError) as error:
            channel_values(value, key, 3)
        assert says in str(error.value)


# --- data.cache -------------------------------------------------------------------------------------------------


def test_cache_auto_takes_train_val_and_test_in_order_while_they_fit_the_budget():
    sizes = {"train": 6e9, "val": 1e9, "test": 2e9}
    assert cache_plan(sizes, "auto", 10) == ["train", "val", "test"]
    assert cache_plan(sizes, "auto", 8) == ["train", "val"]
    assert cache_plan(sizes, "auto", 3) == ["val", "test"]  # train does not fit, the others still do
    assert cache_plan(sizes, "auto", 0) == [] == cache_plan(sizes, False, 100)
    assert cache_plan(sizes, True, 0) == ["train", "val", "test"]


# --- data.label_noise -------------------------------------------------------------------------------------------


def test_label_noise_changes_exactly_the_fraction_and_each_changed_label_to_another_class():
    labels = torch.arange(1000) % 7
    noisy = noisy_labels(labels, fraction=0.3, num_classes=7, seed=0)
    changed = noisy != labels
    assert int(changed.sum()) == 300  # exactly round(0.3 * 1000), and none kept its class by chance
    assert noisy.min() >= 0 and noisy.max() <= 6
    shifts = (noisy[changed] - labels[changed]) % 7
    assert set(shifts.tolist()) == set(range(1, 7))  # every other class is drawn


def test_label_noise_follows_the_seed_and_leaves_the_global_random_stream_alone():
    labels = torch.arange(200) % 4
    torch.manual_seed(0)
    first = noisy_labels(labels, fraction=0.5, num_classes=4, seed=1)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(noisy_labels(labels, fraction=0.5, num_classes=4, seed=1), first)
    assert torch.equal(torch.rand(1), after)
    assert not torch.equal(noisy_labels(labels, fraction=0.5, num_classes=4, seed=2), first)


def test_label_noise_replaces_training_labels_only_in_memory_and_on_disk():
    clean = TensorDataset(torch.rand(40, 2), torch.arange(40) % 4)
    for train in (clean, Served(clean)):
        splits = with_label_noise(Splits(train=train, val=clean, test=clean), 0.25, num_classes=4, seed=0)
        labels = torch.tensor([int(splits.train[i][1]) for i in range(40)])
        assert int((labels != clean.tensors[1]).sum()) == 10
        assert torch.equal(torch.stack([splits.train[i][0] for i in range(40)]), clean.tensors[0])
        assert splits.val is clean and splits.test is clean
    assert with_label_noise(splits, 0, num_classes=4, seed=0) is splits


# --- the data stage's checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("override,says", [
    ("data.label_noise=1", "data.label_noise=1 is invalid: the fraction of training labels to replace must be a "
                           "number in \\[0, 1\\), e.g. data.label_noise=0.4"),
    ("data.label_noise=-0.1", "data.label_noise=-0.1 is invalid"),
    ("data.normalize=maybe", "data.normalize=maybe is invalid: it must be true or false"),
    ("data.mean=0.5", "data.mean and data.std go together"),
    ("data.cache=sometimes", "data.cache=sometimes is not known: use auto, true or false"),
    ("data.cache_budget_gb=-1", "data.cache_budget_gb=-1 is invalid"),
])
def test_a_bad_data_setting_is_one_sentence_naming_the_key(override, says):
    cfg = compose_config(["data=image_folder", override])
    with pytest.raises(UserError, match=says) as error:
        check_settings(cfg.data)
    assert "\n" not in str(error.value)


def test_an_empty_split_or_a_single_class_is_refused():
    two = TensorDataset(torch.rand(4, 2), torch.tensor([0, 1, 0, 1]))
    one = TensorDataset(torch.rand(4, 2), torch.zeros(4, dtype=torch.long))
    empty = TensorDataset(torch.rand(0, 2), torch.zeros(0, dtype=torch.long))
    check_splits(Splits(train=two, val=two, test=two), ("train", "val", "test"))
    with pytest.raises(UserError, match="the val split is empty: give it samples \\(data.source.val_fraction"):
        check_splits(Splits(train=two, val=empty, test=two), ("train", "val", "test"))
    with pytest.raises(UserError, match="the train split holds samples of one class only \\(label 0\\)"):
        check_splits(Splits(train=one, val=two, test=two), ("train", "val", "test"))
    check_splits(Splits(train=None, val=None, test=two), ("test",))  # mode=eval needs the test split only


def test_a_dataset_too_small_for_its_val_fraction_stops_the_run_before_training(tmp_path):
    with pytest.raises(UserError, match="^data.source.val_fraction=0.15 of 3 samples leaves the val split empty: set "
                                        "data.source.val_fraction to at least 0.333 or give the dataset more samples$"):
        run([*TINY, "data.source.num_samples=3", "data.num_classes=2", "trainer.epochs=1"], tmp_path)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()
