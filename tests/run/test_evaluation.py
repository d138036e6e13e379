"""mode=eval: the checkpoint is assembled as training assembled it, with this command's trainer settings, and its
test figures are the training run's own."""
import json

import pytest

from tests.conftest import TINY, run
from tests.datafiles import write_pngs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    metrics = run([*TINY, "model=small_cnn", "trainer.epochs=2"], run_dir)
    return run_dir, metrics


def test_eval_reproduces_the_training_runs_test_figures_and_writes_only_its_own_folder(trained, tmp_path):
    run_dir, metrics = trained
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    evaluated = run(["mode=eval", f"ckpt_path={run_dir}/checkpoints/best.pt", "trainer.progress=false"], tmp_path)
    assert evaluated["test/acc"] == metrics["test/acc"] and evaluated["test/acc"] > 0.5  # chance is 0.25
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)
    for key in ("test/nll", "test/brier", "test/ece"):  # the metrics that compare across losses, as training gave
        assert evaluated[key] == pytest.approx(metrics[key], rel=1e-6)
    assert evaluated["test/calibration"]["count"] == metrics["test/calibration"]["count"]
    assert evaluated["test/per_class_acc"] == metrics["test/per_class_acc"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == evaluated
    assert evaluated["epoch"] == metrics["best/epoch"]
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before


def test_eval_honours_the_trainer_precision(trained, tmp_path):
    run_dir, metrics = trained
    bf16 = run(["mode=eval", f"ckpt_path={run_dir}/checkpoints/best.pt", "trainer.progress=false",
                "trainer.precision=bf16"], tmp_path / "bf16")
    assert bf16["test/loss"] != metrics["test/loss"]  # autocast to bfloat16 rounds the activations
    assert bf16["test/loss"] == pytest.approx(metrics["test/loss"], rel=0.05)


def test_eval_honours_channels_last(trained, tmp_path):
    run_dir, metrics = trained
    evaluated = run(["mode=eval", f"ckpt_path={run_dir}/checkpoints/best.pt", "trainer.progress=false",
                     "trainer.channels_last=true"], tmp_path)
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)


def test_eval_of_an_image_folder_run_counts_its_classes_again(tmp_path):
    write_pngs(tmp_path / "images", ["cat", "dog", "owl"], 8)
    common = ["trainer.progress=false", "data.num_workers=0"]
    metrics = run(["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=16", "data.cache=true",
                   "trainer.epochs=3", "optimizer.lr=0.01", *common], tmp_path / "run")
    assert metrics["best/val_acc"] == 1.0  # three solid colours are easy
    evaluated = run(["mode=eval", f"ckpt_path={tmp_path / 'run/checkpoints/best.pt'}", *common], tmp_path / "eval")
    assert evaluated["test/acc"] == metrics["test/acc"]
