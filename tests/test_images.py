"""Image datasets on files the tests write: MNIST-format files for the torchvision path, PNG folders in both
image_folder layouts, and the one-sentence errors for missing data."""
from urllib.error import URLError

import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import TensorDataset

from tests.conftest import compose_config
from tests.datafiles import COLOURS, write_mnist, write_pngs
from trainer.config import build
from trainer.errors import UserError

def source(data, *overrides, seed=0):
    return build(compose_config([f"data={data}", "data.num_workers=0", *overrides]).data.source, "data", seed=seed)


# --- torchvision datasets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_dataset_splits_train_into_train_and_val_and_keeps_its_test_split(data, folder, tmp_path):
    write_mnist(tmp_path / folder)
    splits = source(data, f"data.root={tmp_path}", "data.download=false", "data.image_size=32")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18, 2, 10)
    assert len(splits.classes) == 10
    x, y = splits.test[3]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and y == 3
    assert x.mean().item() == pytest.approx(30 / 255, abs=1e-3)  # decoded to [0, 1]


def test_cache_decodes_once_into_tensors_equal_to_decoding_on_access(tmp_path):
    write_mnist(tmp_path / "MNIST")
    common = [f"data.root={tmp_path}", "data.download=false"]
    lazy, cached = source("mnist", *common), source("mnist", *common, "data.cache=true")
    assert isinstance(cached.train, TensorDataset) and not isinstance(lazy.train, TensorDataset)
    for part in ("train", "val", "test"):
        images = torch.stack([getattr(lazy, part)[i][0] for i in range(len(getattr(lazy, part)))])
        assert torch.equal(images, getattr(cached, part).tensors[0])


@pytest.mark.parametrize("cache", ["false", "true"])
def test_augmentation_is_random_for_train_only(cache, tmp_path):
    gradient = Image.frombytes("L", (24, 24), bytes(range(0, 240, 10)) * 24)  # crops and flips change its pixels
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(6):
            gradient.save(tmp_path / name / f"{i}.png")
    splits = source("image_folder", f"data.root={tmp_path}", "data.image_size=16", "data.augment=true",
                    f"data.cache={cache}", "data.source.val_fraction=0.5", "data.source.test_fraction=0.2")
    torch.manual_seed(0)
    train_draws = [torch.cat([splits.train[i][0] for i in range(len(splits.train))]) for _ in range(6)]
    val_draws = [torch.cat([splits.val[i][0] for i in range(len(splits.val))]) for _ in range(3)]
    assert any(not torch.equal(train_draws[0], draw) for draw in train_draws[1:])
    assert all(torch.equal(val_draws[0], draw) for draw in val_draws[1:])


@pytest.mark.parametrize("data", ["cifar10", "mnist", "fashion_mnist"])
def test_missing_dataset_without_download_names_data_root_and_data_download(data, tmp_path):
    with pytest.raises(UserError) as error:
        source(data, f"data.root={tmp_path}", "data.download=false")
    assert f"data.root={tmp_path}" in str(error.value) and "data.download=true" in str(error.value)


@pytest.mark.parametrize("data, dataset", [("cifar10", torchvision.datasets.CIFAR10),
                                           ("mnist", torchvision.datasets.MNIST)])
def test_failed_download_names_data_root_and_data_download(data, dataset, tmp_path, monkeypatch):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(dataset, "download", offline)  # as offline, without touching the network
    with pytest.raises(UserError, match="data.download=true could not fetch it \\(<urlopen error no network>\\)"):
        source(data, f"data.root={tmp_path}", "data.download=true")


# --- image_folder -----------------------------------------------------------------------------------------------


def labels_match_colours(dataset, classes):
    for i in range(len(dataset)):
        x, y = dataset[i]
        red, green, blue = (x[c].mean().item() * 255 for c in range(3))
        if COLOURS[classes[int(y)]] != (round(red), round(green), round(blue)):
            return False
    return True


def test_image_folder_with_train_val_test_folders_uses_them_as_they_are(tmp_path):
    write_pngs(tmp_path / "train", ["cat", "dog", "owl"], 4)
    write_pngs(tmp_path / "val", ["cat", "owl"], 2)  # a class may be missing from val/; labels still follow train/
    write_pngs(tmp_path / "test", ["cat", "dog", "owl"], 1)
    splits = source("image_folder", f"data.root={tmp_path}", "data.image_size=16")
    assert splits.classes == ["cat", "dog", "owl"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 3)
    assert splits.train[0][0].shape == (3, 16, 16)
    assert sorted(splits.val.targets.tolist()) == [0, 0, 2, 2]
    assert all(labels_match_colours(part, splits.classes) for part in (splits.train, splits.val, splits.test))


def test_image_folder_with_train_and_val_carves_test_from_train(tmp_path):
    write_pngs(tmp_path / "train", ["cat", "dog"], 10)
    write_pngs(tmp_path / "val", ["cat", "dog"], 3)
    splits = source("image_folder", f"data.root={tmp_path}", "data.image_size=8", "data.source.test_fraction=0.2")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 6, 4)


def test_one_folder_of_classes_is_split_by_seed_into_disjoint_parts(tmp_path):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 10)
    splits = source("image_folder", f"data.root={tmp_path}", "data.image_size=8", "data.channels=1")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (22, 4, 4)
    assert splits.train[0][0].shape == (1, 8, 8)
    parts = [set(part.indices.tolist()) for part in (splits.train, splits.val, splits.test)]
    assert set.union(*parts) == set(range(30)) and sum(map(len, parts)) == 30
    again = source("image_folder", f"data.root={tmp_path}", "data.image_size=8", "data.channels=1")
    assert torch.equal(again.val.indices, splits.val.indices)


@pytest.mark.parametrize("layout, message", [
    ("none", "data=image_folder needs data.root"),
    ("missing", "does not exist"),
    ("flat", "has no class subfolders"),
    ("empty_classes", "no images"),
])
def test_unusable_image_folder_is_a_user_error_naming_data_root(layout, message, tmp_path):
    root = {"none": "null", "missing": str(tmp_path / "nope")}.get(layout, str(tmp_path))
    if layout == "flat":
        Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")
    if layout == "empty_classes":
        (tmp_path / "cat").mkdir()
    with pytest.raises(UserError, match=message) as error:
        source("image_folder", f"data.root={root}")
    assert "data.root" in str(error.value)
