"""The columns of a sweep's tables: which metrics.json key each shows, its title and format, and whether the
seed-group table has it. A new column is one line here (and, for a value computed from a job's history, a line in
trainer/sweep/summary.py's job_values)."""
from dataclasses import dataclass

from trainer.metrics import (ACC, BALANCED_ACC, BEST, BEST_EPOCH, CHOSEN_LR, ECE, EPOCHS, LOSS, MACRO_F1, MAE,
                             MAX_GRAD_NORM, NLL, R2, RMSE, STOPPED_EPOCH, TEST, TRAIN, TUNE_BUDGET, TUNE_EPOCHS,
                             Monitor, result_key)

# A summary's own value, computed from a job's history: the first epoch whose validation accuracy reached the target.
EPOCHS_TO_TARGET, NEVER = "epochs_to_target", "never"
RMSE_BEST = Monitor(metric=RMSE, higher_is_better=False)


@dataclass(frozen=True)
class Column:
    key: str                # metrics.json key, or EPOCHS_TO_TARGET
    title: str
    fmt: str
    mean_fmt: str = None    # of a seed group's mean and interval; fmt when None
    grouped: bool = True    # in the seed-group table too
    optional: bool = False  # left out of summary.md when no job has it


COLUMNS = (
    Column(BEST.best_key, "best val acc", "{:.4f}", optional=True),
    # data.best=balanced_acc or macro_f1: what ranks those jobs
    Column(Monitor(metric=BALANCED_ACC).best_key, "best val balanced acc", "{:.4f}", optional=True),
    Column(Monitor(metric=MACRO_F1).best_key, "best val macro-F1", "{:.4f}", optional=True),
    Column(RMSE_BEST.best_key, "best val RMSE", "{:.4g}", optional=True),  # regression jobs (data.task)
    # data.best=mae or r2: what ranks those regression jobs
    Column(Monitor(metric=MAE, higher_is_better=False).best_key, "best val MAE", "{:.4g}", optional=True),
    Column(Monitor(metric=R2).best_key, "best val R²", "{:.4f}", optional=True),
    Column(BEST_EPOCH, "best epoch", "{:d}", grouped=False),
    Column(result_key(TEST, ACC), "test acc", "{:.4f}", optional=True),
    Column(result_key(TEST, BALANCED_ACC), "test balanced acc", "{:.4f}", optional=True),
    Column(result_key(TEST, MACRO_F1), "test macro-F1", "{:.4f}", optional=True),
    Column(result_key(TEST, RMSE), "test RMSE", "{:.4g}", optional=True),
    Column(result_key(TEST, MAE), "test MAE", "{:.4g}", optional=True),
    Column(result_key(TEST, R2), "test R²", "{:.4f}", optional=True),
    Column(result_key(TEST, NLL), "test NLL", "{:.4f}", optional=True),
    Column(result_key(TEST, ECE), "test ECE", "{:.4f}", optional=True),
    Column(result_key(TEST, LOSS), "test loss", "{:.4f}"),
    Column(result_key(TRAIN, LOSS), "train loss", "{:.4f}"),
    Column(CHOSEN_LR, "lr", "{:.3g}", optional=True),  # only jobs with optimizer.lr=auto or tune record their rate
    Column(TUNE_BUDGET, "lr tune budget (epochs)", "{:d}", mean_fmt="{:.0f}", optional=True),  # optimizer.lr=tune
    Column(TUNE_EPOCHS, "lr tune epochs run", "{:d}", mean_fmt="{:.1f}", optional=True),
    Column(MAX_GRAD_NORM, "max grad norm", "{:.3g}"),
    Column(EPOCHS_TO_TARGET, "epochs to target", "{:d}", mean_fmt="{:.1f}"),
    Column(EPOCHS, "epochs", "{:d}", grouped=False),
    # jobs with trainer.early_stopping.patience: the epoch early stopping ended them at ("–": they trained every epoch)
    Column(STOPPED_EPOCH, "stopped early at", "{:d}", grouped=False, optional=True),
)
