"""Datasets in memory and the loaders that serve them: reproducible splits, batches by slicing, the per-epoch shuffle
a resumed run repeats, and the shards of a torchrun run."""
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from tests.conftest import compose_config
from trainer.config import build
from trainer.data import (Splits, TensorLoader, count_classes, epoch_batches, make_loader, split_indices,
                          standardize)
from trainer.errors import UserError


def served(loader):
    return [int(i) for x, _ in loader for i in x]


def test_a_split_is_disjoint_covers_everything_and_follows_the_seed():
    train, val, test = split_indices(100, 0.15, 0.15, seed=3)
    assert (len(train), len(val), len(test)) == (70, 15, 15)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(100))
    assert torch.equal(split_indices(100, 0.15, 0.15, seed=3)[1], val)
    assert not torch.equal(split_indices(100, 0.15, 0.15, seed=4)[1], val)


@pytest.mark.parametrize("val,test,says", [(0, 0.1, "val_fraction=0 must be between 0 and 1"),
                                           (0.6, 0.5, "must leave data to train on")])
def test_fractions_that_leave_nothing_are_one_sentence(val, test, says):
    with pytest.raises(UserError, match=says):
        split_indices(10, val, test, seed=0)


@pytest.mark.parametrize("data,shape,classes", [("digits", (1, 8, 8), 10), ("iris", (4,), 3),
                                                ("synthetic", (3, 32, 32), 10)])
def test_each_in_memory_source_gives_three_splits_of_its_declared_shape(data, shape, classes):
    cfg = compose_config([f"data={data}"])
    splits = build(cfg.data.source, "data", seed=0)
    assert tuple(splits.train.tensors[0].shape[1:]) == shape == tuple(cfg.data.shape)
    assert set(splits.train.tensors[1].tolist()) == set(range(classes)) == set(range(cfg.data.num_classes))


def test_standardize_uses_the_reference_statistics():
    reference = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    out = standardize(torch.tensor([[2.0, 20.0]]), reference)
    assert out.tolist() == [[0.0, 0.0]]


def test_count_classes_takes_the_datasets_count_or_checks_a_given_one():
    named = Splits(train=None, val=None, test=None, classes=["a", "b"])
    assert count_classes(None, named) == 2 and count_classes(2, named) == 2
    assert count_classes(5, Splits(train=None, val=None, test=None)) == 5
    with pytest.raises(UserError, match="data.num_classes=3 but the dataset has 2 classes"):
        count_classes(3, named)
    with pytest.raises(UserError, match="data.num_classes=null needs a dataset that names its classes"):
        count_classes(None, Splits(train=None, val=None, test=None))


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
