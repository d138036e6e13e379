"""mode=predict: a trained model on new inputs writes predictions.csv, one row per input row or image, with the
classes mode=eval computes; the inputs go through the training preprocessing stored in the checkpoint, and what the
model cannot take is one sentence before any prediction."""
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import compose_config, run, run_cli
from tests.datafiles import mixed_table, write_pngs
from trainer.errors import UserError
from trainer.run import checkpoint
from trainer.run.assemble import assemble
from trainer.run.evaluation import eval_config
from trainer.run.loop import evaluate
from trainer.run.predict import SkippedInputs

QUIET = ["trainer.progress=false", "trainer.device=cpu"]


def predictions(folder):
    return pd.read_csv(folder / "predictions.csv", encoding="utf-8-sig", keep_default_na=False, dtype={"true": str})


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A classifier trained on a table with an id and a split column: (best.pt, the table, its metrics)."""
    home = tmp_path_factory.mktemp("table_run")
    frame = mixed_table(n=300, seed=3)
    frame.to_csv(home / "train.csv", index=False)
    metrics = run(["data=csv", f"data.path={home / 'train.csv'}", "data.target=label", "data.drop=[price]",
                   "data.id_column=id", "data.split_column=split", "model=mlp", "trainer.epochs=5",
                   "optimizer.lr=0.01", *QUIET], home / "run")
    return home / "run" / "checkpoints" / "best.pt", frame, metrics


def eval_classes(ckpt):
    """The class mode=eval predicts for each test sample, in the test split's order: its own assembly and pass."""
    state = checkpoint.load(ckpt)
    cfg = compose_config(["mode=eval", f"ckpt_path={ckpt}", *QUIET])
    parts = assemble(eval_config(state["config"], cfg, []), for_training=False)
    parts.model.load_state_dict(state["model"])
    test = evaluate(parts.net, parts.loaders.test, objective=parts.objective, keep_outputs=True)
    return [parts.classes[k] for k in test["logits"].argmax(dim=1).tolist()]


def test_predict_on_the_labelled_test_rows_gives_the_classes_eval_computes(table_run, tmp_path):
    ckpt, frame, _ = table_run
    test_rows = frame[frame.split == "test"]
    test_rows.to_csv(tmp_path / "test.csv", index=False)
    evaluated = run(["mode=eval", f"ckpt_path={ckpt}", *QUIET], tmp_path / "eval")
    result = run(["mode=predict", f"ckpt_path={ckpt}", "data=csv", f"data.path={tmp_path / 'test.csv'}", *QUIET],
                 tmp_path / "predict")
    rows = predictions(tmp_path / "predict")
    assert result["rows"] == len(rows) == len(test_rows)
    assert list(rows.columns) == ["id", "true", "predicted", "probability", "probability_high", "probability_low",
                                  "probability_mid"]
    assert rows.predicted.tolist() == eval_classes(ckpt)
    assert (rows.predicted == rows.true).mean() == pytest.approx(evaluated["test/acc"])
    assert rows.id.tolist() == test_rows.id.tolist() and rows.true.tolist() == test_rows.label.tolist()
    p = rows[["probability_high", "probability_low", "probability_mid"]].to_numpy()
    assert np.allclose(p.sum(axis=1), 1, atol=1e-5) and np.allclose(p.max(axis=1), rows.probability, atol=1e-6)


def test_a_file_without_the_target_gets_one_row_per_input_row(table_run, tmp_path, caplog):
    ckpt, frame, _ = table_run
    new = frame.drop(columns=["label", "split", "id"]).head(12).copy()
    new.loc[0, "city"], new.loc[1, "age"] = "Jeju", np.nan  # a city training never saw; an empty cell
    new.to_csv(tmp_path / "new.csv", index=False, sep=";", decimal=",", encoding="cp949")
    run(["mode=predict", f"ckpt_path={ckpt}", "data=csv", f"data.path={tmp_path / 'new.csv'}", *QUIET], tmp_path / "p")
    rows = predictions(tmp_path / "p")
    assert rows.row.tolist() == list(range(1, 13)) and "true" not in rows.columns  # the file has no id column
    assert set(rows.predicted) <= {"high", "low", "mid"}
    assert "1 rows have a category the training rows did not have (encoded as all zeros; per column: city 1)" in (
        caplog.text)


def test_inputs_the_model_cannot_take_are_one_sentence_before_any_prediction(table_run, tmp_path):
    ckpt, frame, _ = table_run
    frame.drop(columns=["income"]).to_csv(tmp_path / "new.csv", index=False)
    common = ["mode=predict", f"ckpt_path={ckpt}", "data=csv", f"data.path={tmp_path / 'new.csv'}", *QUIET]
    with pytest.raises(UserError, match=r"the model's input column income is not a column of data.path=.*new.csv "
                                        r"\(its columns: id, age, city, member, label, price, split\): add it"):
        run(common, tmp_path / "p")
    assert not (tmp_path / "p" / "predictions.csv").exists()
    with pytest.raises(UserError, match=r"so data.features=\[age\] cannot apply: remove it; the data keys predict "
                                        r"takes are data.path, data.id_column"):
        run([*common, "data.features=[age]"], tmp_path / "q")
    frame.to_csv(tmp_path / "whole.csv", index=False)
    with pytest.raises(UserError, match=r"data.id_column=ID is not a column .*: did you mean data.id_column=id\?"):
        run([*common[:3], f"data.path={tmp_path / 'whole.csv'}", "data.id_column=ID", *QUIET], tmp_path / "r")


def test_a_regression_predicts_in_the_targets_units(tmp_path):
    frame = mixed_table(n=300, seed=4)
    frame.to_csv(tmp_path / "train.csv", index=False)
    metrics = run(["data=csv", f"data.path={tmp_path / 'train.csv'}", "data.target=price", "data.drop=[label]",
                   "data.split_column=split", "data.id_column=id", "model=mlp", "loss=mse", "trainer.epochs=5",
                   "optimizer.lr=0.01", *QUIET], tmp_path / "run")
    frame[frame.split == "test"].to_csv(tmp_path / "test.csv", index=False)
    run(["mode=predict", f"ckpt_path={tmp_path / 'run/checkpoints/best.pt'}", "data=csv",
         f"data.path={tmp_path / 'test.csv'}", *QUIET], tmp_path / "p")
    rows = pd.read_csv(tmp_path / "p" / "predictions.csv", encoding="utf-8-sig")
    assert list(rows.columns) == ["id", "true", "predicted"]
    rmse = float(np.sqrt(((rows.predicted - rows.true) ** 2).mean()))
    assert rmse == pytest.approx(metrics["test/rmse"], rel=1e-4)  # what training's test of best.pt measured


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("image_run")
    write_pngs(home / "images", ["cat", "dog", "owl"], 8)
    run(["data=image_folder", f"data.root={home / 'images'}", "data.image_size=16", "data.cache=true",
         "data.num_workers=0", "trainer.epochs=3", "optimizer.lr=0.01", *QUIET], home / "run")
    return home / "run" / "checkpoints" / "best.pt", home / "images"


def test_an_image_folder_gets_one_row_per_image_directly_in_it_or_in_class_folders(image_run, tmp_path):
    ckpt, images = image_run
    new = tmp_path / "photos"
    shutil.copytree(images / "owl", new / "some_folder")
    shutil.copy(images / "cat" / "0.png", new / "loose_cat.png")
    (new / ".thumbs").mkdir()
    shutil.copy(images / "dog" / "0.png", new / ".thumbs" / "hidden.png")  # hidden entries are not inputs
    result = run(["mode=predict", f"ckpt_path={ckpt}", "data=image_folder", f"data.root={new}", *QUIET], tmp_path / "p")
    rows = predictions(tmp_path / "p")
    assert result["rows"] == 9 and rows.path.tolist() == [str(new / "loose_cat.png")] + [
        str(new / "some_folder" / f"{k}.png") for k in range(8)]
    assert rows.predicted.tolist() == ["cat"] + ["owl"] * 8  # three solid colours: learned in three epochs


def test_unreadable_images_are_named_skipped_and_exit_with_status_3(image_run, tmp_path):
    ckpt, images = image_run
    new = tmp_path / "photos"
    shutil.copytree(images / "dog", new)
    (new / "broken.jpg").write_text("not an image")
    done = run_cli(tmp_path, "mode=predict", f"ckpt_path={ckpt}", "data=image_folder", f"data.root={new}",
                   "data.num_workers=1", *QUIET)
    assert done.returncode == 3, done.stderr
    assert f"{new / 'broken.jpg'} cannot be read as an image" in done.stdout + done.stderr
    assert "1 of 9 inputs could not be read and were skipped" in done.stderr
    written = list(tmp_path.glob("outputs/*/*/predictions.csv"))
    assert len(written) == 1 and len(predictions(written[0].parent)) == 8
    log = (written[0].parent / "train.log").read_text()  # a partial result, not a failure: no traceback
    assert "partial: 1 of 9 inputs could not be read" in log and "Traceback" not in log and "run failed" not in log


def test_skipped_inputs_are_a_user_error_with_their_own_exit_status():
    assert issubclass(SkippedInputs, UserError) and SkippedInputs.exit_code == 3


def test_eval_of_a_new_table_encodes_it_with_the_stored_preprocessing(table_run, tmp_path):
    ckpt, frame, _ = table_run
    new = frame.copy()
    new["split"] = "test"  # every row is tested
    new.to_csv(tmp_path / "new.csv", index=False, sep="\t")
    # data.split_column is the run's own (split): the new file is tested on the rows it names test, all of them
    evaluated = run(["mode=eval", f"ckpt_path={ckpt}", "data=csv", f"data.path={tmp_path / 'new.csv'}", *QUIET],
                    tmp_path / "eval")
    run(["mode=predict", f"ckpt_path={ckpt}", "data=csv", f"data.path={tmp_path / 'new.csv'}", *QUIET], tmp_path / "p")
    rows = predictions(tmp_path / "p")
    assert len(rows) == 300 and evaluated["test/acc"] == pytest.approx((rows.predicted == rows.true).mean())


def test_a_model_trained_on_data_without_named_columns_or_images_cannot_predict(tmp_path):
    run(["data=iris", "model=mlp", "trainer.epochs=1", *QUIET], tmp_path / "run")
    mixed_table(n=10).to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(UserError, match=r"mode=predict takes a model trained on a table \(data=csv\) or on images, "
                                        r"and this checkpoint's data has samples of shape \[4\] and no named columns"):
        run(["mode=predict", f"ckpt_path={tmp_path / 'run/checkpoints/best.pt'}", "data=csv",
             f"data.path={tmp_path / 'new.csv'}", *QUIET], tmp_path / "p")
