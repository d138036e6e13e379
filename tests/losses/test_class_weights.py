"""Class weights for imbalanced classes (loss.class_weights): the formulas against scikit-learn's and Cui et al.'s,
how each weighted criterion uses them, the refusals, and what they do to the minority classes."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from tests.conftest import compose_config, run
from trainer.errors import UserError
from trainer.losses import FocalLoss, check_task
from trainer.losses.class_weights import balanced, class_weights, effective

COUNTS = [124, 76, 44, 27, 16, 9, 5, 3, 2, 1]  # digits' training split with data.imbalance=0.01


def test_balanced_weights_are_scikit_learns_inverse_frequency():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.repeat(np.arange(10), COUNTS)
    assert balanced(COUNTS, 0.999) == pytest.approx(compute_class_weight("balanced", classes=np.arange(10), y=labels))
    assert balanced([10, 0, 30], 0.9) == pytest.approx([40 / 20, 0.0, 40 / 60])  # a class with no sample: weight 0


def test_effective_weights_follow_cui_et_al_and_sum_to_the_number_of_classes():
    beta = 0.99
    raw = [(1 - beta) / (1 - beta ** n) for n in COUNTS]
    expected = [w / sum(raw) * 10 for w in raw]
    assert effective(COUNTS, beta) == pytest.approx(expected) and sum(effective(COUNTS, beta)) == pytest.approx(10)
    assert effective(COUNTS, 0.0) == pytest.approx([1.0] * 10)  # beta 0: every class alike
    near_one = effective(COUNTS, 1 - 1e-9)  # beta -> 1: inverse frequency, scaled
    assert np.divide(near_one, balanced(COUNTS, 0)) == pytest.approx([near_one[0] / balanced(COUNTS, 0)[0]] * 10,
                                                                     rel=1e-4)


def weighted_objective(loss, scheme="balanced"):
    """The loss as a run builds it, with the class counts the data stage fills in."""
    cfg = compose_config([f"loss={loss}", f"loss.class_weights={scheme}", f"data.class_counts={COUNTS}"])
    return instantiate(cfg.loss)


def test_weighted_ce_and_nll_are_torchs_weighted_mean_over_the_batch():
    generator = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(8, 10, generator=generator), torch.tensor([0, 0, 0, 9, 5, 1, 0, 9])
    weight = torch.tensor(class_weights("balanced", COUNTS, 0.999))
    expected = (weight[labels] * F.cross_entropy(logits, labels, reduction="none")).sum() / weight[labels].sum()
    for loss in ("ce", "nll"):
        torch.testing.assert_close(weighted_objective(loss)(logits, labels), expected)
    assert "class_weights=balanced" in repr(weighted_objective("ce"))


def test_weighted_focal_weighs_each_samples_sum_over_classes_by_its_true_class():
    from torchvision.ops import sigmoid_focal_loss

    generator = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(6, 10, generator=generator), torch.tensor([0, 9, 9, 3, 0, 1])
    weight = torch.tensor(class_weights("effective", COUNTS, 0.999))
    per_sample = sigmoid_focal_loss(logits, F.one_hot(labels, 10).float(), reduction="none").sum(dim=1)
    expected = (weight[labels] * per_sample).sum() / weight[labels].sum()
    torch.testing.assert_close(weighted_objective("focal", "effective")(logits, labels), expected)
    # without weights, focal is what it was: the sum over classes averaged over the samples
    torch.testing.assert_close(FocalLoss()(logits, F.one_hot(labels, 10).float()), per_sample.mean())


@pytest.mark.parametrize("overrides,says", [
    (["loss=mse", "loss.class_weights=balanced"], "loss=mse cannot weigh its samples by class (torch.nn.MSELoss takes "
                                                  "no class weights): use loss=ce, nll, multi_margin or focal"),
    (["loss=bce", "loss.class_weights=effective"], "loss=bce cannot weigh its samples by class"),
    (["loss.class_weights=inverse"], "loss.class_weights=inverse is not known: use balanced"),
    (["loss.class_weights=effective", "loss.class_weights_beta=1"], "loss.class_weights_beta=1 is invalid"),
    (["data=diabetes", "model=mlp", "loss=mse", "loss.class_weights=balanced"],
     "loss.class_weights=balanced weighs classes, and this is regression data"),
    (["data.best=rmse"], "data.best=rmse is not a classification metric: use data.best=acc, data.best=balanced_acc"),
])
def test_class_weights_a_loss_cannot_take_are_one_sentence_before_anything_is_built(overrides, says):
    with pytest.raises(UserError) as error:
        check_task(compose_config(overrides))
    assert str(error.value).startswith(says) and "\n" not in str(error.value)


def test_balanced_class_weights_raise_the_minority_classes_recall_over_plain_ce(tmp_path):
    """Digits with the last class keeping 1% of its training samples: plain ce all but ignores the tail; weighted ce
    pays for it, in recall of the five smallest classes and in balanced accuracy (seeded: the same numbers every
    run)."""
    common = ["data.imbalance=0.01", "model=mlp", "trainer.epochs=8", "trainer.progress=false", "trainer.device=cpu"]
    plain = run(common, tmp_path / "plain")
    weighted = run([*common, "loss.class_weights=balanced"], tmp_path / "weighted")
    minority = lambda metrics: np.mean(metrics["test/per_class_acc"][5:])
    assert minority(weighted) > minority(plain) + 0.1, (minority(plain), minority(weighted))
    assert weighted["test/balanced_acc"] > plain["test/balanced_acc"]
