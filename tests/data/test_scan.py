"""Which files of an image folder are read (trainer/data/scan.py): folders as people have them, with Jupyter's and
macOS's hidden entries, named pipes, links and copies; each file read once, so never in two splits."""
import os
import shutil
import signal

import pytest
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from tests.conftest import compose_config, run
from tests.datafiles import write_pngs
from trainer.config import build
from trainer.data.scan import IMAGE_EXTENSIONS, content_key
from trainer.errors import UserError

QUICK = ["model=mlp", "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu", "data.num_workers=0"]


def source(root, *overrides):
    cfg = compose_config(["data=image_folder", f"data.root={root}", "data.num_workers=0", "data.image_size=8",
                          *overrides])
    return build(cfg.data.source, "data", seed=0)


def read_paths(splits):
    """Every (split, path) the splits read."""
    return [(name, part.base.samples[int(i)][0]) for name in ("train", "val", "test")
            for part in [getattr(splits, name)] for i in part.indices]


def test_the_extensions_are_torchvisions():
    assert IMAGE_EXTENSIONS == IMG_EXTENSIONS


def test_a_plain_folder_is_read_in_torchvisions_order_so_its_split_is_unchanged(tmp_path):
    write_pngs(tmp_path, ["cat", "dog", "owl"], 4)
    for k, sub in enumerate(("more", "extra b", "extra")):  # nested folders, sorted by path as os.walk's tuples are
        write_pngs(tmp_path / "dog" / sub, ["cat"], 2, size=30 + 10 * k)
    ours = source(tmp_path).train.base.samples
    classes = {name: k for k, name in enumerate(["cat", "dog", "owl"])}
    assert ours == make_dataset(str(tmp_path), classes, extensions=IMG_EXTENSIONS)


def write_jupyter_folder(root):
    """Two classes, as a Jupyter user's folder holds them: checkpoints, macOS debris, hidden files at every level."""
    write_pngs(root, ["cat", "dog"], 8)
    write_pngs(root / ".ipynb_checkpoints", ["cat"], 2)  # a hidden folder that holds images
    shutil.copytree(root / "cat", root / "__MACOSX" / "cat")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "dog" / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS's resource fork of 0.png
    write_pngs(root / "dog" / ".ipynb_checkpoints", ["owl"], 1)  # at class level too
    (root / "dog" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")


def test_a_jupyter_folder_trains_on_its_two_classes_and_says_what_it_skipped(tmp_path, capsys):
    write_jupyter_folder(tmp_path / "data")
    metrics = run(["data=image_folder", f"data.root={tmp_path / 'data'}", *QUICK], tmp_path / "run")
    assert len(metrics["test/per_class_acc"]) == 2
    said = capsys.readouterr().out
    assert (f"data.root={tmp_path / 'data'}: skipped 6 hidden entries (a dot name or system debris, never a class or "
            "an image): .ipynb_checkpoints, __MACOSX, cat/.DS_Store and 3 more") in said
    assert "train split (stratified): 12 samples, per class cat 6, dog 6" in said


def test_hidden_entries_are_never_read(tmp_path):
    write_jupyter_folder(tmp_path)
    splits = source(tmp_path)
    assert splits.classes == ["cat", "dog"]
    paths = [path for _, path in read_paths(splits)]
    assert len(paths) == 16 and not any("/." in path or "__MACOSX" in path for path in paths)


@pytest.fixture
def no_hang():
    """A test that would block forever (reading a named pipe) fails after 30 s instead."""
    def stuck(*_):
        raise TimeoutError("blocked reading a file")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_named_pipe_called_png_is_skipped_not_read(tmp_path, capsys, no_hang):
    write_pngs(tmp_path, ["cat", "dog"], 6)
    os.mkfifo(tmp_path / "cat" / "x.png")
    os.symlink(tmp_path / "nowhere.png", tmp_path / "dog" / "gone.png")
    splits = source(tmp_path, "data.cache=true")
    assert len(read_paths(splits)) == 12
    said = capsys.readouterr().out
    assert "skipped 1 entries that are not regular files (named pipes, sockets, devices): cat/x.png" in said
    assert "skipped 1 links to nothing: dog/gone.png" in said


def test_a_link_to_its_own_folder_is_followed_once_and_no_image_is_in_two_splits(tmp_path, capsys):
    write_pngs(tmp_path / "data", ["cat"], 10)
    write_pngs(tmp_path / "elsewhere", ["dog"], 10)
    os.symlink(tmp_path / "elsewhere" / "dog", tmp_path / "data" / "dog")  # a class folder kept somewhere else
    os.symlink(tmp_path / "data" / "cat", tmp_path / "data" / "cat" / "again")  # cat/ a second time: a loop
    splits = source(tmp_path / "data", "data.source.val_fraction=0.3", "data.source.test_fraction=0.3")
    assert splits.classes == ["cat", "dog"]
    real = [os.path.realpath(path) for _, path in read_paths(splits)]
    assert len(real) == len(set(real)) == 20
    assert "skipped 1 links to a folder already read (followed once): cat/again" in capsys.readouterr().out


def test_a_class_folder_that_links_to_another_class_or_to_the_root_is_no_class_of_its_own(tmp_path, capsys):
    write_pngs(tmp_path / "data", ["cat", "dog"], 6)
    os.symlink(tmp_path / "data" / "dog", tmp_path / "data" / "a_dog_alias")  # sorts before the real folder
    os.symlink(tmp_path / "data", tmp_path / "data" / "everything")  # the root again
    splits = source(tmp_path / "data")
    assert splits.classes == ["cat", "dog"]
    assert len(read_paths(splits)) == 12  # each image once, under its one class
    assert "skipped 2 links to a folder already read (followed once): a_dog_alias, everything" in (
        capsys.readouterr().out)


def test_copies_are_read_once_and_copies_under_two_classes_are_named_and_left_out(tmp_path, capsys):
    write_pngs(tmp_path, ["cat", "dog"], 10)
    shutil.copy(tmp_path / "cat" / "0.png", tmp_path / "cat" / "copy of 0.png")  # the same bytes
    os.link(tmp_path / "cat" / "1.png", tmp_path / "cat" / "hard link to 1.png")  # the same file
    os.symlink(tmp_path / "cat" / "2.png", tmp_path / "cat" / "link to 2.png")  # the same file, through a link
    shutil.copy(tmp_path / "dog" / "5.png", tmp_path / "cat" / "dog 5.png")  # a dog filed as a cat too
    splits = source(tmp_path, "data.source.val_fraction=0.3", "data.source.test_fraction=0.3")
    read = [os.path.relpath(path, tmp_path) for _, path in read_paths(splits)]
    assert len(read) == 19 and len({content_key(tmp_path / path) for path in read}) == 19
    assert sorted(read) == sorted([f"cat/{i}.png" for i in range(10)] + [f"dog/{i}.png" for i in range(10) if i != 5])
    said = capsys.readouterr().out
    assert "skipped 3 second copies of a file" in said
    assert ("left out 1 image(s) filed under two or more classes (conflicting labels): cat/dog 5.png (in cat, dog); "
            "keep each image under its one class") in said


def test_a_copy_of_a_training_image_in_test_stays_in_test_only(tmp_path, capsys):
    write_pngs(tmp_path / "train", ["cat", "dog"], 6)
    write_pngs(tmp_path / "test", ["cat", "dog"], 2, size=40)
    shutil.copy(tmp_path / "train" / "cat" / "3.png", tmp_path / "test" / "cat" / "leaked.png")
    splits = source(tmp_path)
    read = read_paths(splits)
    assert ("test", str(tmp_path / "test" / "cat" / "leaked.png")) in read
    assert not any(path.endswith("train/cat/3.png") for _, path in read)
    assert "skipped 1 second copies of a file" in capsys.readouterr().out


def test_a_class_folder_that_cannot_be_read_is_one_sentence_naming_it(tmp_path, monkeypatch):
    write_pngs(tmp_path, ["cat", "dog"], 3)
    scandir = os.scandir

    def refused(path):  # as for a folder without read permission (the tests may run as root, who reads anything)
        if str(path).endswith("dog"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refused)
    with pytest.raises(UserError) as error:
        source(tmp_path)
    assert str(error.value) == (f"{tmp_path / 'dog'} cannot be read (Permission denied): give yourself read "
                                f"permission (chmod -R u+rX '{tmp_path / 'dog'}') or move it out of data.root")


def test_only_files_of_the_same_size_are_hashed(tmp_path, monkeypatch):
    write_pngs(tmp_path, ["cat", "dog"], 5)
    hashed = []
    monkeypatch.setattr("trainer.data.scan.content_key", lambda path: hashed.append(path) or path)
    assert len(read_paths(source(tmp_path, "data.source.val_fraction=0.2", "data.source.test_fraction=0.2"))) == 10
    sizes = [path.stat().st_size for path in tmp_path.glob("*/*.png")]
    assert sorted(hashed) == sorted(str(path) for path in tmp_path.glob("*/*.png")
                                    if sizes.count(path.stat().st_size) > 1)
