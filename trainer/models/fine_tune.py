"""Fine-tuning: unfreezing a pretrained backbone at model.unfreeze_at_epoch, in its own optimizer group at
model.backbone_lr_mult times the head's rate, with the scheduler following it."""
import torch


def schedule_new_group(scheduler: object | None, optimizer: torch.optim.Optimizer, lr_mult: float) -> None:
    """A scheduler keeps per-group state made when it was built; give the added group the first group's, with
    learning rates scaled, so the backbone's rate follows the same schedule at lr_mult times the head's."""
    if scheduler is None:
        return
    first, added = optimizer.param_groups[0], optimizer.param_groups[-1]
    for key in ("initial_lr", "max_lr", "min_lr"):  # every scheduler's initial_lr; OneCycleLR's cycle
        if key in first:
            added[key] = first[key] * lr_mult
    for key in ("max_momentum", "base_momentum"):  # OneCycleLR cycles momentum too
        if key in first:
            added[key] = first[key]
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs.append(scheduler.base_lrs[0] * lr_mult)
    if hasattr(scheduler, "min_lrs"):  # ReduceLROnPlateau
        scheduler.min_lrs.append(scheduler.min_lrs[0])


def unfreeze(model: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: object) -> float:
    """Let the backbone train from now on, in its own optimizer group at model.backbone_lr_mult times the head's
    current learning rate."""
    model.set_frozen(False)
    lr = optimizer.param_groups[0]["lr"] * model.backbone_lr_mult
    optimizer.add_param_group({"params": list(model.backbone.parameters()), "lr": lr})
    schedule_new_group(schedule.scheduler, optimizer, model.backbone_lr_mult)
    return lr
