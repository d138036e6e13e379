"""Metrics: their names (`names`, pure Python: every reader imports them), the running sums a pass keeps on the
device (`running`) and an evaluation's scores (`scores`).

Only the names are re-exported here, so `import trainer.metrics` never loads torch; the device-side classes are
imported from their modules (`from trainer.metrics.running import RunningMetrics`).
"""
from trainer.metrics.names import (ACC, BALANCED_ACC, BEST, BEST_EPOCH, BEST_METRICS, BRIER, CALIBRATION, CHOSEN_LR,
                                   CLASSIFICATION, ECE, ECE_BINS, EPOCH, EPOCHS, EPOCH_S, GRAD_NORM, GRAD_NORM_MAX,
                                   GRAD_NORM_MEAN, GRAD_NORM_STEP, HISTORY, LOSS, LR, MACRO_F1, MAE, MAX_GRAD_NORM,
                                   MONITORABLE, MONITORS, NLL, PASS_METRICS, PERF, PER_CLASS, PER_CLASS_ACC, R2,
                                   RATIO_METRICS, REGRESSION, RMSE, SAMPLES_PER_S, STOPPED_EPOCH, TEST, TRAIN,
                                   TRAIN_STEP_LOSS, TUNE_BUDGET, TUNE_EPOCHS, VAL, WALL_TIME, Monitor, best_metric,
                                   monitor_for, pass_results, pass_tags, per_class_tags, recorded_monitor, result_key,
                                   result_line, tag)

__all__ = ["ACC", "BALANCED_ACC", "BEST", "BEST_EPOCH", "BEST_METRICS", "BRIER", "CALIBRATION", "CHOSEN_LR",
           "CLASSIFICATION", "ECE", "ECE_BINS", "EPOCH", "EPOCHS", "EPOCH_S", "GRAD_NORM", "GRAD_NORM_MAX",
           "GRAD_NORM_MEAN", "GRAD_NORM_STEP", "HISTORY", "LOSS", "LR", "MACRO_F1", "MAE", "MAX_GRAD_NORM",
           "MONITORABLE", "MONITORS", "NLL", "PASS_METRICS", "PERF", "PER_CLASS", "PER_CLASS_ACC", "R2",
           "RATIO_METRICS", "REGRESSION", "RMSE", "SAMPLES_PER_S", "STOPPED_EPOCH", "TEST", "TRAIN",
           "TRAIN_STEP_LOSS", "TUNE_BUDGET", "TUNE_EPOCHS", "VAL", "WALL_TIME", "Monitor", "best_metric",
           "monitor_for", "pass_results", "pass_tags", "per_class_tags", "recorded_monitor", "result_key", "result_line", "tag"]
