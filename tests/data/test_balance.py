"""Class balance of the training split: a long-tailed split made from a balanced one (data.imbalance), the class
counts the losses' weights come from (data.class_counts), and the balanced sampler (data.sampler=balanced)."""
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from tests.conftest import compose_config
from trainer.data import Splits, epoch_batches, labels_of, long_tail_counts, make_loader, prepare_data
from trainer.data.balance import Subsample, with_imbalance
from trainer.data.stage import check_settings
from trainer.errors import UserError


def digits(*overrides):
    """The default run's data stage (digits, stratified), unnormalised so inputs compare across runs."""
    return prepare_data(compose_config(["data.normalize=false", "trainer.device=cpu", *overrides]))


def test_long_tail_counts_keep_ratio_to_the_k_over_k_minus_1_of_each_class_and_at_least_one():
    # CIFAR-LT: class k of 10 keeps floor(n * 0.01^(k/9)); 126 * 0.01 = 1.26 -> 1, 0.01 of 50 -> 0.5 -> still 1
    assert long_tail_counts([126] * 10, 0.01) == [126, 75, 45, 27, 16, 9, 5, 3, 2, 1]
    assert long_tail_counts([50, 0, 50], 0.01) == [50, 0, 1]
    assert long_tail_counts([7, 7], 1.0) == [7, 7]


def test_imbalance_on_digits_gives_the_training_split_the_intended_counts_and_leaves_val_and_test_as_they_were():
    balanced_cfg, balanced = digits()
    cfg, tailed = digits("data.imbalance=0.01")
    before = labels_of(balanced.train).bincount(minlength=10).tolist()
    assert labels_of(tailed.train).bincount(minlength=10).tolist() == long_tail_counts(before, 0.01)
    assert long_tail_counts(before, 0.01) == [124, 76, 44, 27, 16, 9, 5, 3, 2, 1]  # the stratified split's 124, 128, ...
    assert cfg.data.class_counts == long_tail_counts(before, 0.01) and balanced_cfg.data.class_counts == before
    for split in ("val", "test"):
        for a, b in zip(getattr(balanced, split).tensors, getattr(tailed, split).tensors):
            assert torch.equal(a, b)
    # the kept training samples are samples of the balanced split, in its order
    kept = {tuple(x.flatten().tolist()) for x in tailed.train.tensors[0]}
    assert kept <= {tuple(x.flatten().tolist()) for x in balanced.train.tensors[0]}


def test_the_long_tail_follows_the_seed_from_a_random_stream_of_its_own():
    splits = Splits(train=TensorDataset(torch.arange(400).float(), torch.arange(400) % 4), val=None, test=None)
    kept = lambda seed: with_imbalance(splits, 0.1, num_classes=4, seed=seed).train.tensors[0]
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    first = kept(0)
    assert torch.equal(torch.rand(1), before)  # the global stream: as if nothing was drawn
    assert torch.equal(first, kept(0)) and not torch.equal(first, kept(1))
    assert with_imbalance(splits, None, num_classes=4, seed=0) is splits


class OnDisk(Dataset):
    """A dataset whose samples cost a read: counts the reads."""

    def __init__(self, labels):
        self.targets, self.reads = labels, 0

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        self.reads += 1
        return torch.tensor([float(i)]), int(self.targets[i])


def test_imbalance_of_a_dataset_on_disk_keeps_its_labels_without_reading_a_sample():
    disk = OnDisk(torch.arange(40) % 2)
    tailed = with_imbalance(Splits(train=disk, val=None, test=None), 0.25, num_classes=2, seed=0).train
    assert isinstance(tailed, Subsample) and disk.reads == 0
    assert labels_of(tailed).bincount().tolist() == [20, 5]
    assert [int(tailed[i][1]) for i in range(len(tailed))] == labels_of(tailed).tolist()


def test_the_balanced_sampler_draws_every_class_about_equally_often_in_memory_and_on_disk_alike():
    labels = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    data = TensorDataset(torch.arange(100).float().unsqueeze(1), labels)
    weights = 1.0 / labels.bincount()[labels].double()
    memory = make_loader(data, batch_size=10, shuffle=True, seed=3, weights=weights)
    disk = make_loader(OnDisk(labels), batch_size=10, shuffle=True, seed=3, weights=weights)
    drawn = []
    for epoch in range(1, 31):
        in_memory = [int(i) for x, _ in epoch_batches(memory, 3, epoch) for i in x]
        assert in_memory == [int(i) for x, _ in epoch_batches(disk, 3, epoch) for i in x]
        assert len(in_memory) == 100
        drawn += in_memory
    shares = labels[drawn].bincount() / len(drawn)
    assert shares.tolist() == pytest.approx([1 / 3] * 3, abs=0.04)  # shuffled, class 2 would be 1 in 100


def test_a_run_with_the_balanced_sampler_draws_its_long_tailed_training_split_evenly():
    from tests.conftest import TINY
    from trainer.run.assemble import assemble

    parts = assemble(compose_config([*TINY, "data.imbalance=0.1", "data.sampler=balanced"]))
    labels = labels_of(parts.splits.train)
    drawn = torch.cat([y for epoch in range(1, 21) for _, y in epoch_batches(parts.loaders.train, 0, epoch)])
    assert labels.bincount().tolist()[-1] < labels.bincount().tolist()[0] / 5  # the long tail
    assert (drawn.bincount() / len(drawn)).tolist() == pytest.approx([0.25] * 4, abs=0.05)


@pytest.mark.parametrize("override,says", [
    ("data.imbalance=0", r"data.imbalance=0 is invalid: the fraction of its training samples the last class keeps .*"
                         r"must be a number in \(0, 1\] or null"),
    ("data.imbalance=1.5", "data.imbalance=1.5 is invalid"),
    ("data.sampler=oversample", "data.sampler=oversample is invalid: the training split's sampler must be balanced or "
                                "null"),
])
def test_a_bad_balance_setting_is_one_sentence_naming_the_key(override, says):
    with pytest.raises(UserError, match=says) as error:
        check_settings(compose_config([override]).data)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key", ["imbalance=0.1", "sampler=balanced"])
def test_imbalance_and_the_sampler_are_refused_for_regression_data(key):
    with pytest.raises(UserError, match=f"data.{key} is made of classes, and this is regression data"):
        check_settings(compose_config(["data=diabetes", f"data.{key}"]).data)
