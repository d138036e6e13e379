"""What TensorBoard's HParams tab shows of a run: its values with their types, the keys its sweep varies marked as
differing (listed and ticked first), and the metric columns, what ranks the runs first and both tasks' test
metrics."""
import pytest
from tensorboard.plugins.hparams import api_pb2, metadata

from tests.conftest import TINY, compose_config
from trainer.metrics import BEST, MONITORS
from trainer.run.hparams import hparams_summaries, metric_columns, run_hparams, swept_keys


def test_run_hparams_names_group_options_usual_knobs_and_overridden_keys_with_their_types():
    cfg = compose_config([*TINY, "trainer.epochs=1", "optimizer.lr=0.01", "model.hidden=[8,8]"])
    values = run_hparams(cfg, {"loss": "ce", "model": "mlp", "hydra/launcher": "basic", "experiment": None},
                         ["optimizer.lr=0.01", "model.hidden=[8,8]", "loss=ce", "trainer.progress=false"])
    assert values == {"loss": "ce", "model": "mlp", "optimizer.lr": 0.01, "data.batch_size": 64,
                      "trainer.epochs": 1, "seed": 0, "model.hidden": "[8, 8]", "trainer.progress": False}


def test_booleans_stay_booleans_fractions_numbers_and_whole_numbers_their_digits():
    experiment, start, _ = hparams_summaries({"loss": "ce", "seed": 3, "optimizer.lr": 0.01,
                                              "data.normalize": False}, ["acc/test"], swept={"seed", "loss"})
    infos = {info.name: info for info in metadata.parse_experiment_plugin_data(
        experiment.value[0].metadata.plugin_data.content).hparam_infos}
    assert {name: api_pb2.DataType.Name(info.type) for name, info in infos.items()} == {
        "loss": "DATA_TYPE_STRING", "seed": "DATA_TYPE_STRING", "optimizer.lr": "DATA_TYPE_FLOAT64",
        "data.normalize": "DATA_TYPE_BOOL"}
    assert {name for name, info in infos.items() if info.differs} == {"seed", "loss"}
    hparams = metadata.parse_session_start_info_plugin_data(start.value[0].metadata.plugin_data.content).hparams
    assert (hparams["seed"].string_value, hparams["optimizer.lr"].number_value, hparams["data.normalize"].bool_value
            ) == ("3", 0.01, False)  # TensorBoard would show a number 3 as 3.0000


@pytest.mark.parametrize("monitor", MONITORS)
def test_the_metric_columns_start_with_what_ranks_the_runs_and_hold_both_tasks(monitor):
    columns = metric_columns(monitor)
    assert columns[0] == monitor.best_key and len(set(columns)) == len(columns)
    assert {"acc/test", "nll/test", "ece/test", "rmse/test", "mae/test", "r2/test", "loss/test"} <= set(columns)
    assert {m.best_key for m in MONITORS} <= set(columns)
    ticked = columns[:5]  # what the HParams tab ticks
    assert "loss/test" not in ticked or monitor != BEST  # each loss has its own scale: it does not rank losses


def test_a_sweeps_varied_keys_are_read_from_its_record(tmp_path):
    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n    - loss=ce,mse\n    - seed=range(3)\n    - trainer.epochs=2\n"
        "  sweeper:\n    params:\n      optimizer.lr: interval(0.0001, 0.1)\n")
    assert swept_keys(tmp_path) == {"loss", "seed", "optimizer.lr"}
    assert swept_keys(tmp_path / "no-record") == set()
