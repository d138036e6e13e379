"""Image datasets on files the tests write: MNIST-format files for the torchvision path, PNG and JPEG folders in both
image_folder layouts; the images' own size, the cache, and the one-sentence errors for missing, degenerate and
unreadable data."""
import os
import re
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from tests.conftest import compose_config, run
from tests.datafiles import COLOURS, arrow, write_blank_png, write_mnist, write_phone_photos, write_pngs
from trainer.config import build
from trainer.data import prepare_data
from trainer.data.folders import ImageFiles
from trainer.data.images import SIXTEEN_BIT, FileDecoder, Transformed, decoder, read_image, upright_size
from trainer.errors import UserError


def source(data, *overrides, seed=0):
    return build(compose_config([f"data={data}", "data.num_workers=0", *overrides]).data.source, "data", seed=seed)


def stage(data, *overrides):
    """The data stage of a run (trainer.data.prepare_data): the source, then cache, normalisation, noise."""
    return prepare_data(compose_config([f"data={data}", "data.num_workers=0", *overrides]), for_training=True)


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
    common = [f"data.root={tmp_path}", "data.download=false", "data.normalize=false"]
    (_, lazy), (_, cached) = stage("mnist", *common, "data.cache=false"), stage("mnist", *common, "data.cache=true")
    assert isinstance(cached.train, TensorDataset) and not isinstance(lazy.train, TensorDataset)
    for part in ("train", "val", "test"):
        images = torch.stack([getattr(lazy, part)[i][0] for i in range(len(getattr(lazy, part)))])
        assert torch.equal(images, getattr(cached, part).tensors[0])


def test_cache_auto_caches_a_small_dataset_and_streams_one_over_its_budget(tmp_path, capsys):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 10)  # 30 images of 3x16x16: 92 kB decoded
    common = [f"data.root={tmp_path}", "data.image_size=16"]
    _, cached = stage("image_folder", *common)
    assert all(isinstance(part, TensorDataset) for part in (cached.train, cached.val, cached.test))
    assert ("data.cache=auto: train, val and test (92.2 kB) fit data.cache_budget_gb=2: decoded once into "
            "memory") in capsys.readouterr().out
    _, streamed = stage("image_folder", *common, "data.cache_budget_gb=0.00007")  # 70 kB: room for train (68 kB)
    assert isinstance(streamed.train, TensorDataset)
    assert not isinstance(streamed.val, TensorDataset) and not isinstance(streamed.test, TensorDataset)
    assert ("train (67.6 kB) fit data.cache_budget_gb=7e-05: decoded once into memory; val and test (24.6 kB) "
            "would not fit too: read from disk on every pass with data.num_workers=0") in capsys.readouterr().out
    _, nothing = stage("image_folder", *common, "data.cache_budget_gb=0")
    assert not any(isinstance(part, TensorDataset) for part in (nothing.train, nothing.val, nothing.test))
    assert "would not fit data.cache_budget_gb=0" in capsys.readouterr().out


@pytest.mark.parametrize("cache", ["false", "true"])
def test_augmentation_is_random_for_train_only(cache, tmp_path):
    gradient = Image.frombytes("L", (24, 24), bytes(range(0, 240, 10)) * 24)  # crops and flips change its pixels
    for k, name in enumerate(("cat", "dog")):
        (tmp_path / name).mkdir()
        for i in range(6):
            gradient.putpixel((0, 0), 6 * k + i)  # each file its own (byte-identical copies are read once)
            gradient.save(tmp_path / name / f"{i}.png")
    _, splits = stage("image_folder", f"data.root={tmp_path}", "data.image_size=16", "data.augment=true",
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
    write_pngs(tmp_path / "val", ["cat", "owl"], 2, size=30)  # a class may be missing from val/; labels follow train/
    write_pngs(tmp_path / "test", ["cat", "dog", "owl"], 1, size=40)  # (sizes of their own: no copies of train's)
    splits = source("image_folder", f"data.root={tmp_path}", "data.image_size=16")
    assert splits.classes == ["cat", "dog", "owl"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 3)
    assert splits.train[0][0].shape == (3, 16, 16)
    assert sorted(splits.val.targets.tolist()) == [0, 0, 2, 2]
    assert all(labels_match_colours(part, splits.classes) for part in (splits.train, splits.val, splits.test))


def test_image_folder_with_train_and_val_carves_test_from_train(tmp_path):
    write_pngs(tmp_path / "train", ["cat", "dog"], 10)
    write_pngs(tmp_path / "val", ["cat", "dog"], 3, size=40)
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
        (tmp_path / "dog").mkdir()
    with pytest.raises(UserError, match=message) as error:
        source("image_folder", f"data.root={root}")
    assert "data.root" in str(error.value)


# --- the images' own size ---------------------------------------------------------------------------------------


def test_without_an_image_size_images_keep_their_own_size(tmp_path, capsys):
    for name, colour in (("cat", "red"), ("dog", "blue")):
        (tmp_path / name).mkdir()
        for i in range(6):
            image = Image.new("RGB", (12, 12), colour)
            image.putpixel((0, 0), (i, i, i))  # each file its own (byte-identical copies are read once)
            image.save(tmp_path / name / f"{i}.png")
    cfg, splits = stage("image_folder", f"data.root={tmp_path}")
    assert splits.image_size == 12 and cfg.data.image_size == 12 and list(cfg.data.shape) == [3, 12, 12]
    assert splits.train[0][0].shape == (3, 12, 12)
    assert "data.image_size=null: 12 px, the images' own size (8 sampled, all 12x12)" in capsys.readouterr().out


def test_images_of_mixed_sizes_get_the_median_of_their_shorter_sides(tmp_path, capsys):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 10)  # 20x24 to 29x24
    cfg, splits = stage("image_folder", f"data.root={tmp_path}")
    assert cfg.data.image_size == 24 and splits.train[0][0].shape == (3, 24, 24)
    assert "shorter sides from 20 to 24 px, this is their median" in capsys.readouterr().out


def test_a_torchvision_dataset_without_an_image_size_keeps_its_own(tmp_path):
    write_mnist(tmp_path / "MNIST")
    cfg, splits = stage("mnist", f"data.root={tmp_path}", "data.download=false")
    assert cfg.data.image_size == 28 and splits.test[0][0].shape == (1, 28, 28)


# --- degenerate and unreadable data: one sentence, before training ---------------------------------------------


def write_jpegs(folder, classes, per_class, size=32):
    """Noisy JPEGs, one tint per class (noise: so that half a file ends inside the image data, not its header)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size, size, 3)) + np.array([150 * (k == 0), 150 * (k == 1), 60])
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name / f"{i}.jpg")


def truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) * 3 // 4])  # cut inside the image data


def test_an_unreadable_file_is_named_with_the_fix_also_from_a_dataloader_worker(tmp_path):
    write_jpegs(tmp_path, ["cat", "dog"], 3)
    truncate(tmp_path / "cat" / "1.jpg")
    (tmp_path / "dog" / "2.jpg").write_text("not an image")
    files = ImageFiles([(str(tmp_path / name / f"{i}.jpg"), k) for k, name in enumerate(["cat", "dog"])
                        for i in range(3)])
    decoded = Transformed(files, range(len(files)), FileDecoder(channels=3, image_size=32))
    with pytest.raises(UserError, match="cat/1.jpg cannot be read as an image \\(image file is truncated"):
        decoded[1]
    with pytest.raises(UserError) as error:
        list(DataLoader(torch.utils.data.Subset(decoded, [5]), num_workers=1, collate_fn=lambda batch: batch))
    assert str(error.value) == (f"{tmp_path / 'dog' / '2.jpg'} cannot be read as an image (no image format PIL knows):"
                                " delete it or replace it with a readable copy")


def degenerate(case, root):
    """Data a classifier cannot be trained or tested on, and the overrides that point a run at it."""
    if case == "root one level too high":
        write_jpegs(root / "photos" / "train", ["cat", "dog"], 4)
        return [f"data.root={root}"]
    if case == "empty class folder":
        write_jpegs(root, ["cat", "dog"], 6)
        (root / "owl").mkdir()
    if case == "empty test folder":
        write_jpegs(root / "train", ["cat", "dog"], 6)
        (root / "test" / "cat").mkdir(parents=True)
    if case == "empty val split":
        write_jpegs(root, ["cat", "dog"], 1)
    if case.startswith("unreadable") or case == "not an image":
        write_jpegs(root, ["cat", "dog"], 10)
    if case.startswith("unreadable"):
        truncate(root / "cat" / "3.jpg")  # its header is whole: only decoding finds it
    if case == "not an image":
        (root / "dog" / "7.jpg").write_text("not an image")  # found when the images' own size is read
    streamed = ["data.cache=false", "data.num_workers=2", "data.normalize=false"] if "streamed" in case else []
    return [f"data.root={root}", *streamed]


@pytest.mark.parametrize("case, says", [
    ("root one level too high", "data.root={root} has one class folder, photos, and a classifier needs at least two: "
                                "if {root}/photos holds your class folders, set data.root={root}/photos"),
    ("empty class folder", "data.root={root}: the class folder {root}/owl holds no images (.jpg, .jpeg, .png, .ppm, "
                           ".bmp, .pgm, .tif, .tiff, .webp): add its images or remove the folder"),
    ("empty test folder", "data.root={root}: {root}/test holds no images in class folders: add them, or remove test/ "
                          "to carve the test split from train/ (data.source.test_fraction)"),
    ("empty val split", "data.source.val_fraction=0.15 of 2 samples leaves the val split empty: set "
                        "data.source.val_fraction to at least 0.5 or give the dataset more samples"),
    ("unreadable, found while caching", "{root}/cat/3.jpg cannot be read as an image (image file is truncated "
                                        "(N bytes not processed)): delete it or replace it with a readable copy"),
    ("unreadable, streamed by workers", "{root}/cat/3.jpg cannot be read as an image (image file is truncated "
                                        "(N bytes not processed)): delete it or replace it with a readable copy"),
    ("not an image", "{root}/dog/7.jpg cannot be read as an image (no image format PIL knows): delete it or replace "
                     "it with a readable copy"),
])
def test_degenerate_data_stops_the_run_in_one_sentence_before_anything_trains(case, says, tmp_path):
    root = tmp_path / "data"
    overrides = degenerate(case, root)
    with pytest.raises(UserError) as error:
        run(["data=image_folder", *overrides, "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu"],
            tmp_path / "run")
    assert re.fullmatch(re.escape(says.format(root=root)).replace("N", "\\d+"), str(error.value)), str(error.value)
    assert not list((tmp_path / "run").glob("checkpoints/*.pt")) and not (tmp_path / "run" / "metrics.json").exists()


# --- what data.root actually is --------------------------------------------------------------------------------


def denied(folder, monkeypatch):
    """`folder` as the user sees a folder without read permission (also when the tests run as root, who may read
    anything): listing it fails, and os.walk, like torchvision's folder readers, skips it silently."""
    scandir = os.scandir

    def refuse(path="."):
        if os.path.abspath(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)


@pytest.mark.parametrize("data", ["image_folder", "mnist"])
def test_a_file_given_as_data_root_is_named_a_file_not_missing(data, tmp_path):
    (tmp_path / "photos.zip").write_bytes(b"PK")
    with pytest.raises(UserError, match=rf"^data.root={tmp_path / 'photos.zip'} is a file, not a folder: point "
                                        r"data.root at"):
        run([f"data={data}", f"data.root={tmp_path / 'photos.zip'}", "trainer.progress=false"], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_unreadable_class_folder_is_named_unreadable_not_empty(tmp_path, monkeypatch):
    write_pngs(tmp_path / "images", ["cat", "dog", "owl"], 4)
    denied(tmp_path / "images" / "owl", monkeypatch)
    owl = tmp_path / "images" / "owl"
    with pytest.raises(UserError, match=rf"^{owl} cannot be read \(Permission denied\): give yourself read permission "
                                        rf"\(chmod -R u\+rX '{owl}'\) or move it out of data.root$"):
        run(["data=image_folder", f"data.root={tmp_path / 'images'}", "trainer.progress=false"], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_unreadable_data_root_is_named_unreadable(tmp_path, monkeypatch):
    write_pngs(tmp_path / "images", ["cat", "dog"], 4)
    denied(tmp_path / "images", monkeypatch)
    with pytest.raises(UserError, match=r"images cannot be read \(Permission denied\): give yourself permission"):
        source("image_folder", f"data.root={tmp_path / 'images'}")


def test_an_image_the_user_may_not_open_says_so(tmp_path, monkeypatch):
    write_pngs(tmp_path, ["cat", "dog"], 2)

    def no_permission(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(Image, "open", no_permission)
    with pytest.raises(UserError, match=r"cat/0.png cannot be opened \(no read permission\): make it readable "
                                        r"\(chmod u\+r\) or delete it$"):
        FileDecoder(channels=3, image_size=8)(tmp_path / "cat" / "0.png")


# --- files as cameras and scanners write them: EXIF orientation, big images --------------------------------------


def test_a_file_is_decoded_upright_as_its_exif_orientation_says(tmp_path):
    upright = arrow("up").resize((24, 16))  # not square: turning it swaps its sides
    for orientation, stored in ((1, upright), (6, upright.transpose(Image.Transpose.ROTATE_90)),
                                (8, upright.transpose(Image.Transpose.ROTATE_270)),
                                (3, upright.transpose(Image.Transpose.ROTATE_180))):
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(tmp_path / f"{orientation}.png", exif=exif)  # lossless, so the pixels compare exactly
        assert upright_size(tmp_path / f"{orientation}.png") == (24, 16)
        assert np.array_equal(np.asarray(read_image(tmp_path / f"{orientation}.png", side=None)), np.asarray(upright))


def test_phone_photos_stored_sideways_train_as_they_are_shown(tmp_path):
    """Issue 19's set: arrows up and right, half of the "up" JPEGs stored turned with an EXIF orientation (as raw
    pixels they point right); decoded raw, a test accuracy of 0.71 was measured, upright it is learnt."""
    write_phone_photos(tmp_path / "photos", 40)
    metrics = run(["data=image_folder", f"data.root={tmp_path / 'photos'}", "data.image_size=16", "model=mlp",
                   "optimizer.lr=0.003", "trainer.epochs=15", "data.num_workers=0", "trainer.progress=false",
                   "trainer.device=cpu"], tmp_path / "run")
    assert metrics["test/acc"] >= 0.95


def test_a_big_jpeg_is_decoded_at_a_fraction_of_its_size_and_looks_the_same(tmp_path):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)  # smooth once enlarged, as a photo is at 32 px
    big = Image.fromarray(small).resize((2000, 1500), Image.Resampling.BICUBIC)
    big.save(tmp_path / "big.jpg", quality=95)
    big.save(tmp_path / "big.png", compress_level=1)
    assert read_image(tmp_path / "big.jpg", side=32).size == (125, 94)  # draft 1/8 in the DCT (250x188), reduce(2)
    assert read_image(tmp_path / "big.png", side=32).size == (86, 65)  # reduce(23) of whole blocks: at least 2 x 32
    assert read_image(tmp_path / "big.png", side=None).size == (2000, 1500)
    big.convert("P").save(tmp_path / "palette.png")  # a mode reduce() refuses: decoded whole, as before
    assert read_image(tmp_path / "palette.png", side=32).size == (2000, 1500)
    full = FileDecoder(channels=3, image_size=32)
    plain = decoder(3, 32)(big)  # every pixel decoded, then resized
    assert (full(tmp_path / "big.jpg") - plain).abs().mean() < 0.01
    assert (full(tmp_path / "big.png") - plain).abs().mean() < 0.01


def test_an_image_over_the_pixel_limit_stops_the_run_in_one_sentence_naming_it_and_the_key(tmp_path):
    write_pngs(tmp_path / "scans", ["cat", "dog"], 6)
    write_blank_png(tmp_path / "scans" / "dog" / "scan.png", 13_500, 13_500)  # 182 M pixels from 20 kB
    with pytest.raises(UserError) as error:
        run(["data=image_folder", f"data.root={tmp_path / 'scans'}", "trainer.epochs=1", "trainer.progress=false",
             "trainer.device=cpu", "data.num_workers=0"], tmp_path / "run")
    assert str(error.value) == (
        f"{tmp_path / 'scans' / 'dog' / 'scan.png'} is 13500x13500 px (182,250,000 pixels), over "
        "data.max_image_pixels=178956970, the limit that keeps a decompression bomb out: if you trust this folder, "
        "raise it (data.max_image_pixels=182250000), else shrink or remove the file")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_pixel_limit_is_a_key_a_trusting_user_raises(tmp_path):
    write_pngs(tmp_path, ["cat", "dog"], 6)  # 20x24 to 25x24 px: up to 600 pixels
    strict = source("image_folder", f"data.root={tmp_path}", "data.image_size=8", "data.max_image_pixels=500")
    with pytest.raises(UserError, match="is 21x24 px \\(504 pixels\\), over data.max_image_pixels=500"):
        [strict.train[i] for i in range(len(strict.train))]
    splits = source("image_folder", f"data.root={tmp_path}", "data.image_size=8", "data.max_image_pixels=600")
    assert splits.train[0][0].shape == (3, 8, 8)


def test_a_sixteen_bit_image_is_scaled_to_eight_bits_not_clipped_to_white(tmp_path):
    Image.fromarray(np.full((12, 12), 128 * 257, dtype=np.uint16)).save(tmp_path / "grey16.png")  # middle grey
    Image.fromarray(np.full((12, 12), 128, dtype=np.uint8)).save(tmp_path / "grey8.png")
    with Image.open(tmp_path / "grey16.png") as image:
        assert image.mode in SIXTEEN_BIT  # a 16-bit file indeed
    decode = FileDecoder(channels=3, image_size=8)
    assert torch.equal(decode(tmp_path / "grey16.png"), decode(tmp_path / "grey8.png"))
    assert decode(tmp_path / "grey16.png").mean().item() == pytest.approx(128 / 255)
