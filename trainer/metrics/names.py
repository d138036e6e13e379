"""Metric names, defined once: TensorBoard tags and history keys (`loss/val`), metrics.json keys (`test/acc`,
`best/val_acc`), the sweep summary's columns, the HParams tab, the scheduler's monitor, the sweeper's return value,
and what "best" means for a task. Rename one here and every reader follows.

Pure Python on purpose: reading a sweep's summary or choosing a run's mode looks names up here without loading torch.
"""
from collections.abc import Mapping
from dataclasses import dataclass

# what a pass measures, and the splits it measures them on
LOSS, ACC = "loss", "acc"
TRAIN, VAL, TEST = "train", "val", "test"
LR = "lr"  # the learning rate an epoch started with (the one TensorBoard tag of the rate)
TRAIN_STEP_LOSS = "loss/train_step"  # the batch loss every trainer.log_every_n_steps steps
EPOCH = "epoch"  # TensorBoard: the epoch a global step ends (every chart's x axis is the global step)
# How fast an epoch went: training samples per second (the training steps alone), and the epoch's seconds from its
# first step to its checkpoint (training, validation, checkpoint); TensorBoard and history, per epoch
SAMPLES_PER_S, EPOCH_S = "perf/samples_per_s", "perf/epoch_s"
PERF = (SAMPLES_PER_S, EPOCH_S)


def tag(metric: str, split: str) -> str:
    """TensorBoard tag and history key: tag(LOSS, VAL) == "loss/val"."""
    return f"{metric}/{split}"


def result_key(split: str, metric: str) -> str:
    """metrics.json key: result_key(TEST, ACC) == "test/acc"."""
    return f"{split}/{metric}"


# metrics.json keys besides result_key(...); STOPPED_EPOCH (with trainer.early_stopping.patience set): the epoch early
# stopping ended the run at, null when it trained every epoch (also in status.json)
EPOCHS, WALL_TIME, HISTORY, STOPPED_EPOCH = "epochs", "wall_time_s", "history", "stopped_epoch"
PER_CLASS_ACC = result_key(TEST, "per_class_acc")  # each class's recall on the test split

# Metrics that compare across losses, from the predicted class probabilities: the mean negative log-probability of
# the true class, the Brier score, the expected calibration error (top-label, ECE_BINS equal-width bins).
NLL, BRIER, ECE = "nll", "brier", "ece"
ECE_BINS = 15
CALIBRATION = result_key(TEST, "calibration")  # the test split's reliability bins: confidence, accuracy, count
# A regression's metrics, in the targets' own units: root mean squared error, mean absolute error, and R^2 (the
# fraction of the targets' variance the predictions explain: 1 is perfect, 0 predicting the mean).
RMSE, MAE, R2 = "rmse", "mae", "r2"
# Metrics that see the minority classes, from an evaluation's confusion matrix: balanced accuracy (the mean over the
# classes of each class's recall) and macro-F1 (the mean over the classes of each class's F1), as scikit-learn's
# balanced_accuracy_score and f1_score(average="macro") define them; and each class's recall, PER_CLASS.
BALANCED_ACC, MACRO_F1, PER_CLASS = "balanced_acc", "macro_f1", "per_class_acc"
# what a pass reports under its split's tags (tag(metric, split)): training passes have the first two
PASS_METRICS = (LOSS, ACC, BALANCED_ACC, MACRO_F1, NLL, BRIER, ECE, RMSE, MAE, R2)


def pass_tags(split: str, result: dict) -> dict:
    """{"loss/val": ..., "acc/val": ..., "nll/val": ...}: a pass's results under their TensorBoard tags."""
    return {tag(metric, split): result[metric] for metric in PASS_METRICS if metric in result}


def result_line(test: dict) -> str:
    """The test result as the log shows it: accuracy, loss, NLL and ECE; for regression RMSE, MAE, R^2 and loss."""
    if ACC in test:
        return f"acc {test[ACC]:.4f}  loss {test[LOSS]:.4f}  nll {test[NLL]:.4f}  ece {test[ECE]:.4f}"
    return f"rmse {test[RMSE]:.4f}  mae {test[MAE]:.4f}  r2 {test[R2]:.4f}  loss {test[LOSS]:.4f}"


def per_class_tags(split: str, recalls: list) -> dict:
    """{"per_class_acc/val/0": ..., ...}: each class's recall under its TensorBoard tag (a class the split has no
    sample of is left out)."""
    return {f"{tag(PER_CLASS, split)}/{k}": recall for k, recall in enumerate(recalls) if recall is not None}


def pass_results(split: str, result: dict) -> dict:
    """{"test/loss": ..., "test/acc": ..., ...}: a pass's results under their metrics.json keys."""
    return {result_key(split, metric): result[metric] for metric in PASS_METRICS if metric in result}


# The global L2 norm of the gradients before each optimizer step.
GRAD_NORM = "grad_norm"
GRAD_NORM_STEP = tag(GRAD_NORM, "train_step")                      # TensorBoard, every log step
GRAD_NORM_MEAN, GRAD_NORM_MAX = tag(GRAD_NORM, "train_mean"), tag(GRAD_NORM, "train_max")  # history, per epoch
MAX_GRAD_NORM = result_key(TRAIN, "grad_norm_max")                # metrics.json: the run's largest
CHOSEN_LR = "optimizer/lr"  # metrics.json, HParams, summary: the rate optimizer.lr=auto or =tune picked
# optimizer.lr=tune's budget: the epochs its trials may train in all (lr_tune.trials x their epochs), and the epochs
# they did train (the pruner stops bad trials early)
TUNE_BUDGET, TUNE_EPOCHS = "lr_tune/budget_epochs", "lr_tune/epochs_trained"


# Metrics a reader compares as ratios ("2.8 times the RMSE"): errors and losses, > 0, each on a scale of its own. A
# sweep compares its groups on them by the per-seed ratio and draws them on a log axis, with bands of the logarithms.
RATIO_METRICS = (LOSS, NLL, RMSE, MAE)


@dataclass(frozen=True)
class Monitor:
    """What "best" means: which validation metric picks best.pt, and whether higher is better."""
    metric: str = ACC
    split: str = VAL
    higher_is_better: bool = True

    @property
    def tag(self) -> str:
        return tag(self.metric, self.split)  # "acc/val", the history key it reads

    @property
    def compared_by_ratio(self) -> bool:
        return self.metric in RATIO_METRICS

    @property
    def best_key(self) -> str:
        return f"best/{self.split}_{self.metric}"  # "best/val_acc" in metrics.json and TensorBoard

    def improved(self, value: float, best: float | None, min_delta: float = 0.0) -> bool:
        """Whether `value` beats `best` by more than `min_delta` (in the metric's units); anything beats None."""
        if best is None:
            return True
        return value > best + min_delta if self.higher_is_better else value < best - min_delta


BEST = Monitor()
BEST_EPOCH = "best/epoch"
# what a dataset's data.task says it is
CLASSIFICATION, REGRESSION = "classification", "regression"


# what data.best may name for each task (the first is the default)
BEST_METRICS = {CLASSIFICATION: (ACC, BALANCED_ACC, MACRO_F1), REGRESSION: (RMSE, MAE, R2)}
# every "best" a run can record: classification's validation accuracy (or balanced accuracy, or macro-F1), or a
# regression's data.best
MONITORS = (BEST, Monitor(metric=RMSE, higher_is_better=False), Monitor(metric=MAE, higher_is_better=False),
            Monitor(metric=R2), Monitor(metric=BALANCED_ACC), Monitor(metric=MACRO_F1))


def recorded_monitor(metrics: Mapping) -> "Monitor":
    """The Monitor whose best a run's metrics (metrics.json) hold; BEST when none."""
    return next((monitor for monitor in MONITORS if monitor.best_key in metrics), BEST)


def monitor_for(data: Mapping) -> "Monitor":
    """What "best" means for the data config's task, data.best: for classification the highest validation accuracy
    (acc, the default), balanced accuracy or macro-F1; for regression the lowest validation rmse (the default) or
    mae, or the highest r2."""
    metric = best_metric(data)
    if metric == ACC:
        return BEST
    return Monitor(metric=metric, higher_is_better=metric not in RATIO_METRICS)


def best_metric(data: Mapping) -> str:
    """data.best, or (null, or a key the data config lacks) its task's default: acc, or a regression's rmse."""
    return data.get("best") or BEST_METRICS[data.get("task") or CLASSIFICATION][0]


# what a scheduler config may name as scheduler.monitor
MONITORABLE = (tag(LOSS, VAL), tag(ACC, VAL))


