"""Stratified splits (trainer/data/splits.py): a rare class is not left out of validation or test by chance."""
import pytest
import torch

from tests.conftest import compose_config
from tests.datafiles import write_pngs
from trainer.config import build
from trainer.data import prepare_data, split_indices


@pytest.mark.parametrize("rare", [3, 4, 6])
def test_a_class_of_at_least_three_samples_is_in_train_val_and_test_for_every_seed(rare):
    labels = torch.tensor([0] * 300 + [1] * rare)
    for seed in range(20):
        for part in split_indices(len(labels), 0.15, 0.15, seed, labels=labels, method="stratified"):
            assert int((labels[part] == 1).sum()) >= 1


def test_a_folder_of_300_and_6_images_puts_the_rare_class_in_val_and_test(tmp_path):
    write_pngs(tmp_path, ["cat"], 300, size=4)  # each its own size (4+i px wide), so no two files are copies
    write_pngs(tmp_path, ["dog"], 6, size=4)
    for seed in range(3):
        cfg = compose_config(["data=image_folder", f"data.root={tmp_path}", "data.image_size=4", f"seed={seed}"])
        splits = build(cfg.data.source, "data", seed=seed)
        assert [int((part.targets == 1).sum()) for part in (splits.train, splits.val, splits.test)] == [4, 1, 1]


def test_a_class_too_small_for_every_split_is_named_in_the_log_with_its_count(tmp_path, capsys):
    write_pngs(tmp_path, ["cat"], 300, size=4)
    write_pngs(tmp_path, ["dog"], 2, size=4)
    prepare_data(compose_config(["data=image_folder", f"data.root={tmp_path}", "data.image_size=4",
                                 "data.num_workers=0"]))
    assert ("class dog has 2 samples, none in the val or test split: too few for one in each split (3 needed); the "
            "val and test figures say nothing about it") in capsys.readouterr().out
