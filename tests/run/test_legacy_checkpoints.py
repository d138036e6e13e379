"""Checkpoints written by earlier losslab versions still load, evaluate to the figures they gave then, and resume.

tests/assets/legacy/ holds last.pt after 2 epochs of three small runs written by losslab a6a7d0a (before the concept
packages: their stored configs name `trainer.images.image_folder`, and split every dataset at random), and the
figures that version computed: `mode=eval` of each checkpoint, and the test result of the same run trained straight
for 3 epochs (tests/assets/legacy/make_legacy.py wrote them)."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import run
from tests.datafiles import write_pngs

LEGACY = Path(__file__).parents[1] / "assets" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())
QUIET = ["trainer.progress=false", "trainer.device=cpu"]


def scalars(metrics, like=None):
    """The test and best figures that are numbers (the calibration bins and per-class accuracies follow from them);
    with `like`, only those it has (a metric added since, such as test/balanced_acc, was not computed then)."""
    return {key: value for key, value in metrics.items()
            if key.startswith(("test/", "best/")) and isinstance(value, (int, float)) and (like is None or key in like)}


def test_the_legacy_checkpoints_name_targets_that_have_moved():
    stored = torch.load(LEGACY / "image_folder_mlp_epoch2.pt", weights_only=True)["config"]
    assert stored["data"]["source"]["_target_"] == "trainer.images.image_folder"


@pytest.mark.parametrize("name", ["iris_mlp", "diabetes_mse"])
def test_a_legacy_checkpoint_evaluates_to_the_figures_it_gave_when_it_was_written(tmp_path, name):
    metrics = run(["mode=eval", f"ckpt_path={LEGACY / f'{name}_epoch2.pt'}", *QUIET], tmp_path)
    expected = EXPECTED[name]["eval_of_epoch2"]
    assert scalars(metrics, like=expected) == pytest.approx(scalars(expected), rel=1e-6)


def test_a_legacy_image_folder_checkpoint_evaluates_on_the_same_images_to_the_same_figures(tmp_path):
    folder = tmp_path / "pngs"
    write_pngs(folder, ["cat", "dog", "owl"], 12, size=10)  # the images it was trained on, written again
    metrics = run(["mode=eval", f"ckpt_path={LEGACY / 'image_folder_mlp_epoch2.pt'}", "data=image_folder",
                   f"data.root={folder}", "data.batch_size=8", "data.num_workers=0", *QUIET], tmp_path / "eval")
    expected = EXPECTED["image_folder_mlp"]["eval_of_epoch2"]
    assert scalars(metrics, like=expected) == pytest.approx(scalars(expected), rel=1e-6)
    assert 0 <= metrics["test/balanced_acc"] <= 1  # a metric added since: an old checkpoint gets it too


@pytest.mark.parametrize("name", ["iris_mlp", "diabetes_mse"])
def test_a_legacy_checkpoint_resumes_to_where_a_straight_run_of_that_version_ended(tmp_path, name):
    loose = tmp_path / "last.pt"
    shutil.copy(LEGACY / f"{name}_epoch2.pt", loose)
    metrics = run([*EXPECTED[name]["overrides"], "trainer.epochs=3", f"ckpt_path={loose}"], tmp_path / "run")
    expected = EXPECTED[name]["straight_3_epochs"]
    assert scalars(metrics, like=expected) == pytest.approx(scalars(expected), rel=1e-6)
