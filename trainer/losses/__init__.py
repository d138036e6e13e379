"""Losses: the training objective (`objective`: how logits and labels become what a torch criterion expects, how
logits become class probabilities, a regression's target spaces), the criteria torch lacks (`criteria`), and which
losses fit which task (`tasks`). A new loss is one YAML file in conf/loss/ and, at most, one criterion here."""
from trainer.losses.criteria import FocalLoss, SquaredLogError
from trainer.losses.objective import INPUTS, PROBABILITIES, SPACES, TARGETS, Objective
from trainer.losses.tasks import TASK_KEYS, check_targets_fit_loss, check_task, losses_for

__all__ = ["INPUTS", "PROBABILITIES", "SPACES", "TARGETS", "TASK_KEYS", "check_targets_fit_loss", "check_task",
           "FocalLoss", "losses_for", "Objective", "SquaredLogError"]
