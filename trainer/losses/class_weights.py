"""Class weights for imbalanced classes (loss.class_weights): each class's weight, computed from the training split's
samples per class (data.class_counts, a fact the data stage fills into the run's config, so the losses never read the
data), and which criteria can weigh a sample by its class.

A weighted criterion multiplies each sample's loss by the weight of its true class: CrossEntropyLoss and NLLLoss then
average by the summed weights, MultiMarginLoss by the number of samples (as torch defines them), FocalLoss by the
summed weights (Cui et al. 2019 weigh sigmoid and focal losses this way)."""
from hydra.utils import get_object
from omegaconf import DictConfig
from torch import nn

from trainer.errors import UserError
from trainer.losses.criteria import FocalLoss
from trainer.metrics import CLASSIFICATION


def balanced(counts: list[int], beta: float) -> list[float]:
    """Inverse frequency, scikit-learn's "balanced": n_samples / (n_classes * n_k), over the classes the split has
    (a class without training samples is never a target: weight 0). `beta` is not used."""
    present = [n for n in counts if n]
    return [sum(present) / (len(present) * n) if n else 0.0 for n in counts]


def effective(counts: list[int], beta: float) -> list[float]:
    """Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples": a class of n samples has
    (1 - beta^n) / (1 - beta) effective samples; its weight is the inverse, normalised so that the weights of the
    classes the split has sum to their number. beta -> 0 weighs every class alike, beta -> 1 is inverse frequency."""
    raw = [(1 - beta) / (1 - beta ** n) if n else 0.0 for n in counts]
    scale = sum(1 for n in counts if n) / sum(raw)
    return [weight * scale for weight in raw]


# loss.class_weights: how a class's weight follows from its training samples (null: every class weighs 1)
CLASS_WEIGHTS = {"balanced": balanced, "effective": effective}
# the criteria that weigh each sample by its true class through their `weight` (a tensor of one weight per class)
WEIGHS_BY_CLASS = (nn.CrossEntropyLoss, nn.NLLLoss, nn.MultiMarginLoss, FocalLoss)


def class_weights(scheme: str, counts: list[int], beta: float) -> list[float]:
    """The weight of each class under `scheme` (a key of CLASS_WEIGHTS)."""
    return CLASS_WEIGHTS[scheme](list(counts), beta)


def check_class_weights(cfg: DictConfig, loss_name: str) -> None:
    """Before anything is built: loss.class_weights is known, its beta in [0, 1), the data has classes, and the
    criterion can weigh a sample by its class; each mistake one sentence naming the key."""
    scheme, beta = cfg.loss.get("class_weights"), cfg.loss.get("class_weights_beta", 0.999)
    if scheme is None:
        return
    if scheme not in CLASS_WEIGHTS:
        raise UserError(f"loss.class_weights={scheme} is not known: use balanced (inverse frequency), effective (Cui et "
                        "al.'s effective number of samples, with loss.class_weights_beta) or null")
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not 0 <= beta < 1:
        raise UserError(f"loss.class_weights_beta={beta} is invalid: use a number in [0, 1), e.g. 0.999")
    if cfg.data.get("task", CLASSIFICATION) != CLASSIFICATION:
        raise UserError(f"loss.class_weights={scheme} weighs classes, and this is regression data: leave "
                        "loss.class_weights=null")
    target = cfg.loss.get("criterion", {}).get("_target_")
    try:
        weighs = issubclass(get_object(target), WEIGHS_BY_CLASS)
    except Exception:  # an unknown target: building the loss reports it, in one sentence
        return
    if not weighs:
        raise UserError(f"loss={loss_name} cannot weigh its samples by class ({target} takes no class weights): use "
                        "loss=ce, nll, multi_margin or focal with loss.class_weights, or data.sampler=balanced")
