"""The test samples the best checkpoint gets most wrong: ranked by the run's own loss, listed with their index into
the test split, labels, probabilities and class names, drawn for image data."""
import csv
import math

import pytest
import torch
from torch import nn

from tests.conftest import TINY, run
from tests.datafiles import write_pngs
from trainer.losses import Objective
from trainer.run.top_losses import worst


def read_rows(run_dir):
    with open(run_dir / "top_losses.csv") as f:
        return list(csv.DictReader(f))


def test_worst_ranks_by_the_objectives_per_sample_loss_and_names_the_classes():
    mse = Objective(nn.MSELoss(), "softmax", "onehot", 3)
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 0, 2, 1])  # right, confidently wrong, right, wrong with little confidence
    rows = worst(mse, logits, labels, classes=["cat", "dog", "owl"], k=2)
    assert [row.index for row in rows] == [1, 3]
    first = rows[0]
    assert (first.true, first.predicted, first.true_name, first.predicted_name) == (0, 1, "cat", "dog")
    p = logits[1].softmax(dim=0)
    assert first.probability == pytest.approx(p.max().item()) and first.true_probability == pytest.approx(p[0].item())
    assert first.loss == pytest.approx(mse(logits[1:2], labels[1:2]).item())


def test_a_run_lists_the_test_samples_with_the_highest_loss_and_draws_them(tmp_path):
    metrics = run([*TINY, "trainer.epochs=2"], tmp_path)
    rows = read_rows(tmp_path)
    assert len(rows) == 16 and list(rows[0]) == ["index", "true", "predicted", "probability", "true_probability",
                                                 "loss", "true_name", "predicted_name"]
    losses = [float(row["loss"]) for row in rows]
    assert losses == sorted(losses, reverse=True) and losses[0] > metrics["test/loss"]
    # ce: a sample's loss is -log of its probability of the true class
    assert all(float(row["loss"]) == pytest.approx(-math.log(float(row["true_probability"])), rel=1e-4)
               for row in rows)
    assert all(0 <= int(row["index"]) < 30 for row in rows) and len({row["index"] for row in rows}) == 16
    assert (tmp_path / "top_losses.png").stat().st_size > 0


def test_an_image_folder_run_names_the_classes(tmp_path):
    write_pngs(tmp_path / "images", ["cat", "dog", "owl"], 10)
    run(["data=image_folder", f"data.root={tmp_path / 'images'}", "data.image_size=8", "trainer.epochs=1",
         "trainer.progress=false", "trainer.device=cpu"], tmp_path / "run")
    rows = read_rows(tmp_path / "run")
    assert rows and all(row["true_name"] == ["cat", "dog", "owl"][int(row["true"])] and row["predicted_name"]
                        for row in rows)
    assert (tmp_path / "run" / "top_losses.png").is_file()


def test_tabular_data_gets_top_losses_as_a_table_only(tmp_path):
    run(["data=iris", "model=mlp", "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu"], tmp_path)
    assert len(read_rows(tmp_path)) == 16 and not (tmp_path / "top_losses.png").exists()
    assert (tmp_path / "reliability.png").is_file()
