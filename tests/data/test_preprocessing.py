"""A table's preprocessing: the task follows from the target column, what is fitted comes from the training rows only,
and it is plain data that encodes new rows exactly as it encoded the training rows."""
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from trainer.data.preprocessing import check_fitted, encoded, fit_features, fit_target, target_tensor
from trainer.data.table_files import Table
from trainer.errors import UserError


def text_table(**columns):
    """A Table as a CSV is read: every cell text, empty ones missing."""
    frame = pd.DataFrame({name: [None if v is None else str(v) for v in values] for name, values in columns.items()},
                         dtype=object)
    return Table(frame, "t.csv")


@pytest.mark.parametrize("values,task,classes", [
    (["b", "a", "c", "a"], "classification", ["a", "b", "c"]),
    ([1, 10, 2, 9, 2], "classification", ["1", "2", "9", "10"]),  # whole numbers, sorted as numbers
    (["1.0", "2", "2.0", "1"], "classification", ["1", "2"]),  # one class however the number is written
    ([0.5, 1.25, 3.0, 2.0], "regression", None),
    (list(range(25)), "regression", None),  # more whole numbers than MAX_INTEGER_CLASSES
])
def test_the_task_and_classes_follow_from_the_target_column(values, task, classes):
    fitted = fit_target(text_table(y=values), "y", np.arange(len(values)), None)
    assert (fitted["task"], fitted["classes"]) == (task, classes)


def test_data_task_overrides_the_target_column_and_text_cannot_be_regressed():
    table = text_table(y=[1, 2, 1, 2])
    assert fit_target(table, "y", np.arange(4), "regression")["task"] == "regression"
    with pytest.raises(UserError, match=r"data.target=y holds text \('x'\) and data.task=regression needs numbers"):
        fit_target(text_table(y=["x", "y"]), "y", np.arange(2), "regression")


def test_a_target_of_numbers_but_for_a_few_cells_is_one_sentence_not_a_thousand_classes():
    values = [f"{v:.2f}" for v in np.linspace(0, 100, 40)] + ["?", "n/a"]
    with pytest.raises(UserError, match=r"data.target=y holds numbers but for 2 cells \('\?', 'n/a'\): empty them for "
                                        r"a regression"):
        fit_target(text_table(y=values), "y", np.arange(len(values)), None)


def test_labels_index_the_classes_and_a_class_the_model_lacks_is_one_sentence():
    fitted = fit_target(text_table(y=["b", "a", "b"]), "y", np.arange(3), None)
    assert target_tensor(text_table(y=["b", "a", "b"]), fitted, np.arange(3)).tolist() == [1, 0, 1]
    with pytest.raises(UserError, match=r"data.target=y holds 'z' in 1 rows, not a class the model has \(a, b\)"):
        target_tensor(text_table(y=["a", "z"]), fitted, np.arange(2))


def test_what_is_fitted_comes_from_the_training_rows_only():
    table = text_table(age=[1, None, 3, 1000, None], city=["x", None, "y", "z", "x"])
    fitted = fit_features(table, ["age", "city"], np.array([0, 1, 2]))  # rows 3 and 4: val and test
    assert fitted == [{"name": "age", "kind": "number", "fill": 2.0, "indicator": True},
                      {"name": "city", "kind": "category", "categories": ["x", "y"], "missing": True}]
    result = encoded(table, fitted)
    assert result.x.tolist() == [[1, 0, 1, 0, 0],
                                 [2, 1, 0, 0, 1],   # empty: the training median, the indicator, the missing input
                                 [3, 0, 0, 1, 0],
                                 [1000, 0, 0, 0, 0],  # z was never seen in training: all zeros
                                 [2, 1, 1, 0, 0]]
    assert result.unseen.tolist() == [False, False, False, True, False] and result.unseen_by_column == {"city": 1}


def test_the_fitted_preprocessing_is_plain_data_a_weights_only_checkpoint_holds():
    table = text_table(age=[1, None, 3], city=["서울", None, "부산"])
    fitted = fit_features(table, ["age", "city"], np.arange(3))
    assert json.loads(json.dumps(fitted)) == fitted
    buffer = io.BytesIO()
    torch.save({"preprocessing": fitted}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["preprocessing"] == fitted


def test_columns_one_hot_encoding_cannot_learn_from_are_one_sentence():
    ids = [f"user{k}" for k in range(30)]
    with pytest.raises(UserError, match=r"column name .* holds a different text in each of its 30 training rows: "
                                        r"leave it out with data.drop=\[name\], or name it data.id_column"):
        fit_features(text_table(name=ids), ["name"], np.arange(30))
    with pytest.raises(UserError, match=r"column v .* has no value in the training rows: leave it out"):
        fit_features(text_table(v=[None, None, 5]), ["v"], np.arange(2))


def test_text_a_config_would_read_as_an_interpolation_is_refused():
    with pytest.raises(UserError, match=r"holds the text '\$\{oc.env:HOME\}', which a config would read as an "
                                        r"interpolation"):
        fit_features(text_table(city=["a", "${oc.env:HOME}"]), ["city"], np.arange(2))


GOOD = {"target": {"name": "y", "task": "classification", "numbers": False, "classes": ["a", "b"]},
        "features": [{"name": "age", "kind": "number", "fill": 39.5, "indicator": True},
                     {"name": "city", "kind": "category", "categories": ["x", "y"], "missing": False}]}


@pytest.mark.parametrize("edit,says", [
    (lambda f: f["features"][0].update(fill="abc"), "the feature age is not a number with a numeric fill"),
    (lambda f: f["features"][0].update(kind="eval"), "the feature age is not a number"),
    (lambda f: f["features"][1].update(categories=[str(k) for k in range(5000)]), "its features make 5002 inputs "
                                                                                  "and the model takes 4"),
    (lambda f: f.pop("features"), "it is not {target: ..., features: [...]}"),
])
def test_an_edited_stored_preprocessing_is_one_sentence_before_any_row_is_read(edit, says):
    check_fitted(GOOD, inputs=4)  # age, its indicator, two cities
    fitted = json.loads(json.dumps(GOOD))
    edit(fitted)
    with pytest.raises(UserError, match=re.escape(says)):
        check_fitted(fitted, inputs=4)
