"""What TensorBoard's HParams tab shows of a run: its hyperparameters (the option chosen in each config group, the
usual knobs, every key the command line set) with their types, which of them its sweep varies, and the metric
columns, what the sweep summary ranks by first.

How the tab reads them (tensorboard 2.x, `plugins/hparams/backend_context.py` and its query pane): the columns come
from the `_hparams_/experiment` summary of *one* run of the folder it is given; hyperparameters marked `differs` are
listed first and the first five are ticked; the first five metrics are ticked and the first colours the plot. So
every run names the keys its sweep varies as differing, its own "best" first among the metrics, and the test metrics
of both tasks, so a regression run's columns exist whichever run the tab reads. Numbers TensorBoard would show with
five significant digits whatever they are (a seed of 0 as 0.0000): whole numbers are recorded as their digits.
"""
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from trainer.config import override_key
from trainer.metrics import (ACC, BALANCED_ACC, BEST_METRICS, BRIER, CLASSIFICATION, ECE, LOSS, MACRO_F1, MAE, MONITORS,
                             NLL, R2, RMSE, TEST, Monitor, tag)

# Shown for every run, besides the chosen config-group options and whatever the command line overrides.
HPARAM_KEYS = ("optimizer.lr", "data.batch_size", "trainer.epochs", "seed")
CLASSIFICATION_COLUMNS = (tag(ACC, TEST), tag(BALANCED_ACC, TEST), tag(MACRO_F1, TEST), tag(NLL, TEST), tag(ECE, TEST),
                          tag(BRIER, TEST))
REGRESSION_COLUMNS = (tag(RMSE, TEST), tag(MAE, TEST), tag(R2, TEST))


def run_hparams(cfg: DictConfig, choices: Mapping | None = None, overrides: Sequence[str] = ()) -> dict:
    """{name: value} for the HParams tab: the option chosen in each config group (`choices`, e.g. {"loss": "ce"};
    groups left empty, such as `experiment`, are left out), the usual knobs (HPARAM_KEYS) and every key the command
    line overrode, with their config's own types (lists, dicts and null as text)."""
    values = {group: str(option) for group, option in (choices or {}).items()
              if not group.startswith("hydra") and option is not None}
    keys = list(HPARAM_KEYS) + [override_key(o) for o in overrides if override_key(o) not in values]
    for key in keys:
        value = OmegaConf.select(cfg, key, default=None)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        values[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return values


def metric_columns(monitor: Monitor) -> list[str]:
    """The HParams metric columns, in order: what ranks the runs (the run's own "best"), its task's test metrics
    (those that compare across losses first, its loss last), then the other task's and the other "best"s."""
    classifies = monitor.metric in BEST_METRICS[CLASSIFICATION]
    own, other = ((CLASSIFICATION_COLUMNS, REGRESSION_COLUMNS) if classifies
                  else (REGRESSION_COLUMNS, CLASSIFICATION_COLUMNS))
    bests = [m.best_key for m in MONITORS if m != monitor]
    return [monitor.best_key, *own, tag(LOSS, TEST), *other, *bests]


def swept_keys(sweep_dir: str | Path) -> set[str]:
    """The keys a sweep varies: those its command line (Hydra's record, multirun.yaml in the sweep folder) or its
    sweeper's `params` give several values, a range or an interval. Empty without the record."""
    record = Path(sweep_dir) / "multirun.yaml"
    if not record.is_file():
        return set()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra_cfg = OmegaConf.load(record).get("hydra") or {}
    command = [str(o) for o in OmegaConf.select(hydra_cfg, "overrides.task", default=None) or []]
    params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None) or {}
    command += [f"{key}={value}" for key, value in params.items()]
    try:
        parsed = OverridesParser.create().parse_overrides(command)
    except Exception:  # a record this Hydra cannot read (another version's): no key is marked
        return set()
    return {override.get_key_element() for override in parsed if override.is_sweep_override()}


def job_hparams(cfg: DictConfig) -> tuple[dict, set[str]]:
    """(run_hparams, swept_keys) of the running Hydra job; without Hydra (train() called directly) no choices,
    overrides or sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return run_hparams(cfg), set()
    job = HydraConfig.get()
    swept = swept_keys(job.sweep.dir) if job.mode == RunMode.MULTIRUN else set()
    return run_hparams(cfg, job.runtime.choices, job.overrides.task), swept


def hparams_summaries(values: Mapping, metrics: Sequence[str], *, swept: set[str] = frozenset()) -> list:
    """The three summaries of the HParams plugin (experiment, session start, session end) as TensorBoard's own
    protos: booleans as booleans, fractions as numbers, whole numbers and text as text."""
    from google.protobuf import struct_pb2
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    typed, infos = {}, []
    for name, value in values.items():
        if isinstance(value, bool):
            typed[name], kind = struct_pb2.Value(bool_value=value), api_pb2.DATA_TYPE_BOOL
        elif isinstance(value, float):
            typed[name], kind = struct_pb2.Value(number_value=value), api_pb2.DATA_TYPE_FLOAT64
        else:
            typed[name], kind = struct_pb2.Value(string_value=str(value)), api_pb2.DATA_TYPE_STRING
        infos.append(api_pb2.HParamInfo(name=name, type=kind, differs=name in swept))
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=[
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=name)) for name in metrics])
    parts = [(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
             (metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(
                 session_start_info=plugin_data_pb2.SessionStartInfo(hparams=typed))),
             (metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(
                 session_end_info=plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)))]
    return [Summary(value=[Summary.Value(tag=name, metadata=metadata.create_summary_metadata(data))])
            for name, data in parts]
