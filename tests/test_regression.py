"""Regression: the data's task picks the losses that fit, the targets' space and scale, the metrics (RMSE, MAE, R^2 in
the targets' units), what "best" means, the pictures; and the seeds' claims about MSE, MAE, Huber and MSLE hold."""
import csv
import json
import math

import pytest
import torch

from tests.conftest import compose_config, options, run, run_cli
from trainer.data import diabetes
from trainer.errors import UserError
from trainer.losses import Objective
from trainer.metrics.scores import RegressionScores
from trainer.run.assemble import assemble

OUTLIERS = ["data=synthetic_regression", "model=mlp", "data.source.outlier_fraction=0.2", "trainer.epochs=20",
            "trainer.progress=false", "trainer.device=cpu"]


def test_an_mlp_on_diabetes_reaches_the_r2_of_a_linear_model_on_the_same_split(tmp_path):
    from sklearn.linear_model import LinearRegression

    metrics = run(["data=diabetes", "model=mlp", "loss=mse", "trainer.epochs=30", "trainer.progress=false"], tmp_path)
    splits = diabetes(val_fraction=0.15, test_fraction=0.2, seed=0)  # conf/data/diabetes.yaml's split of seed 0
    (x_train, y_train), (x_test, y_test) = splits.train.tensors, splits.test.tensors
    linear = LinearRegression().fit(x_train.numpy(), y_train.numpy()).score(x_test.numpy(), y_test.numpy())
    assert 0.35 < linear < 0.6  # measured 0.479
    # measured: the MLP 0.448 after 30 epochs (it fits 442 rows no better than a line; best.pt is picked on 66)
    assert metrics["test/r2"] >= linear - 0.05, (metrics["test/r2"], linear)
    assert metrics["test/rmse"] > metrics["test/mae"] > 10  # in the targets' own units (25 to 346)
    assert "best/val_rmse" in metrics and "test/acc" not in metrics


def test_with_outlier_targets_mae_and_huber_beat_mse_on_the_clean_test_split(tmp_path):
    mae = {loss: run([*OUTLIERS, f"loss={loss}"], tmp_path / loss)["test/mae"] for loss in ("mse", "l1", "huber")}
    # measured (seed 0): mse 0.33, huber 0.26, l1 0.12
    assert mae["l1"] < 0.6 * mae["mse"] and mae["huber"] < mae["mse"], mae


@pytest.mark.parametrize("loss", ["mse", "l1", "smooth_l1", "huber", "msle"])
@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_every_regression_loss_with_every_optimizer_composes_and_learns(tmp_path, loss, optimizer):
    positive = ["data.source.heavy_tail=true"] if loss == "msle" else []
    rate = {"lbfgs": ["optimizer.lr=0.5"], "asgd": ["optimizer.lr=0.05"], "sgd": ["optimizer.lr=0.05"],
            "adadelta": ["optimizer.lr=1.0"], "adagrad": ["optimizer.lr=0.05"], "radam": ["optimizer.lr=0.01"]}.get(
        optimizer, [])  # rates that learn in 8 short epochs (RAdam warms up from a small step)
    metrics = run(["data=synthetic_regression", "model=mlp", f"loss={loss}", f"optimizer={optimizer}", *rate,
                   *positive, "data.source.num_samples=300", "trainer.epochs=8", "trainer.progress=false"], tmp_path)
    assert metrics["test/r2"] > 0.3, metrics["test/r2"]  # 0 is predicting the mean


@pytest.mark.parametrize("args,says", [
    (["data=diabetes", "model=mlp", "loss=ce"], "loss=ce does not fit regression data, and data=diabetes is a "
                                                "regression set (data.task=regression): use one of loss=huber"),
    (["loss=huber"], "loss=huber does not fit classification data, and data=digits is a classification set"),
    (["data=synthetic_regression", "model=mlp", "loss=msle"], "loss=msle takes log(1 + target), and "
                                                              "data=synthetic_regression has training targets down to"),
    (["data=diabetes", "model=mlp", "loss=mse", "data.label_noise=0.2"], "data.label_noise=0.2 replaces class labels"),
    (["data=diabetes", "model=mlp", "loss=mse", "data.best=acc"], "data.best=acc is not a regression metric: use "
                                                                  "data.best=rmse"),
])
def test_a_loss_that_does_not_fit_the_task_is_one_sentence_before_training(tmp_path, args, says):
    with pytest.raises(UserError) as error:  # the CLI prints it as `error: ...` with exit status 2 (tests/test_cli.py)
        run([*args, "trainer.epochs=1", "trainer.progress=false"], tmp_path / "run")
    assert str(error.value).startswith(says), str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_msle_trains_in_log_space_and_predicts_above_minus_one():
    stats = {"log1p": [0.5, 2.0]}
    objective = Objective(torch.nn.MSELoss(), None, None, 1, task="regression", regression="log1p",
                          target_stats=stats)
    outputs, targets = torch.tensor([[-50.0], [0.0], [3.0]]), torch.tensor([[0.0], [1.0], [100.0]])
    assert (objective.predict(outputs) >= -1).all()  # expm1 of anything (float32 rounds the far tail to -1)
    expected = torch.mean(((torch.log1p(targets) - 0.5) / 2.0 - outputs) ** 2)
    torch.testing.assert_close(objective(outputs, targets), expected)
    # at the standardised log of the targets, the predictions are the targets
    torch.testing.assert_close(objective.predict((torch.log1p(targets) - 0.5) / 2.0), targets)


def test_regression_scores_are_rmse_mae_and_r2_in_the_targets_units():
    scores = RegressionScores("cpu", predict=lambda outputs: outputs * 10)
    targets, outputs = torch.tensor([[10.0], [20.0], [30.0], [40.0]]), torch.tensor([[1.0], [2.5], [3.0], [3.5]])
    scores.add(outputs[:2], targets[:2])
    scores.add(outputs[2:], targets[2:])
    result = RegressionScores.results(*scores.sums(), count_all=4)
    errors = torch.tensor([0.0, 5.0, 0.0, -5.0])
    assert result["rmse"] == pytest.approx(math.sqrt((errors ** 2).mean().item()))
    assert result["mae"] == pytest.approx(2.5)
    assert result["r2"] == pytest.approx(1 - 50 / 500)


def test_a_regression_run_writes_predictions_and_its_worst_test_predictions_and_eval_reproduces_it(tmp_path):
    metrics = run(["data=diabetes", "model=mlp", "loss=huber", "trainer.epochs=3", "trainer.progress=false"],
                  tmp_path / "run")
    assert (tmp_path / "run" / "predictions.png").stat().st_size > 10_000
    assert not (tmp_path / "run" / "reliability.png").exists()
    rows = list(csv.DictReader((tmp_path / "run" / "top_losses.csv").open()))
    assert len(rows) == 16 and [float(r["loss"]) for r in rows] == sorted((float(r["loss"]) for r in rows),
                                                                          reverse=True)
    assert abs(float(rows[0]["prediction"]) - float(rows[0]["target"])) == pytest.approx(float(rows[0]["abs_error"]),
                                                                                        rel=1e-4)
    evaluated = run(["mode=eval", f"ckpt_path={tmp_path / 'run/checkpoints/best.pt'}", "trainer.progress=false"],
                    tmp_path / "eval")
    assert evaluated["test/rmse"] == pytest.approx(metrics["test/rmse"], rel=1e-6)
    assert evaluated["test/r2"] == pytest.approx(metrics["test/r2"], rel=1e-6)


def test_the_target_statistics_are_the_training_splits_and_travel_with_the_config(tmp_path):
    parts = assemble(compose_config(["data=diabetes", "model=mlp", "loss=msle", "trainer.device=cpu"]))
    y = parts.splits.train.tensors[1].double()
    mean, std = parts.cfg.data.target_stats["log1p"]
    assert mean == pytest.approx(torch.log1p(y).mean().item()) and std == pytest.approx(torch.log1p(y).std().item())
    assert float(parts.objective.target_mean) == pytest.approx(mean)


def test_a_regression_sweep_ranks_by_the_lowest_validation_rmse(tmp_path):
    result = run_cli(tmp_path, "-m", "data=synthetic_regression", "model=mlp", "loss=mse,l1",
                     "data.source.outlier_fraction=0.2", "data.source.num_samples=300", "trainer.epochs=6",
                     "trainer.progress=false", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))
    rmse = [float(row["best/val_rmse"]) for row in rows]
    assert rmse == sorted(rmse) and "loss=l1" in rows[0]["overrides"]
    text = (tmp_path / "sweep" / "summary.md").read_text()
    assert "Ranked by lowest best validation rmse." in text and "| test R² |" in text and "test NLL" not in text
    assert json.loads((tmp_path / "sweep" / rows[0]["job_dir"] / "metrics.json").read_text())["test/r2"] > 0
