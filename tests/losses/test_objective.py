"""The seeds' mathematics of the losses, checked against torch, and every loss option's plumbing."""
import pytest
import torch
import torch.nn.functional as F
import yaml
from hydra.utils import instantiate
from torch import nn

from tests.conftest import CONF, compose_config, options
from trainer.errors import UserError
from trainer.losses import Objective


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 10, generator=generator, dtype=torch.float64)
    labels = torch.tensor([1, 0, 9, 3, 3])
    return logits, labels


def grad_of(loss_fn, logits, labels):
    x = logits.clone().requires_grad_(True)
    loss = loss_fn(x, labels)
    loss.backward()
    return loss.detach(), x.grad


def test_ce_equals_log_softmax_plus_nll_and_the_formula_in_value_and_gradient(batch):
    logits, labels = batch
    formula = lambda x, y: (-x[torch.arange(len(y)), y] + torch.logsumexp(x, dim=1)).mean()  # -x[y] + log sum exp x
    ce_loss, ce_grad = grad_of(nn.CrossEntropyLoss(), logits, labels)
    for other in (lambda x, y: nn.NLLLoss()(nn.LogSoftmax(dim=1)(x), y), formula):
        loss, grad = grad_of(other, logits, labels)
        torch.testing.assert_close(loss, ce_loss)
        torch.testing.assert_close(grad, ce_grad)


def test_single_sample_ce_matches_the_seed_formula_by_hand():
    x = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    by_hand = -2.0 + torch.log(torch.exp(torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)).sum())
    torch.testing.assert_close(nn.CrossEntropyLoss()(x, torch.tensor([1])), by_hand)


def test_ce_gradient_wrt_logits_is_softmax_minus_onehot(batch):
    logits, labels = batch
    _, grad = grad_of(lambda x, y: F.cross_entropy(x, y, reduction="sum"), logits, labels)
    torch.testing.assert_close(grad, logits.softmax(dim=1) - F.one_hot(labels, 10).double())
    # with the default mean reduction the gradient is the same, divided by the batch size
    _, grad_mean = grad_of(F.cross_entropy, logits, labels)
    torch.testing.assert_close(grad_mean, grad / len(labels))


def test_batch_loss_is_the_mean_of_per_sample_losses(batch):
    logits, labels = batch
    per_sample = [F.cross_entropy(logits[i : i + 1], labels[i : i + 1]) for i in range(len(labels))]
    torch.testing.assert_close(F.cross_entropy(logits, labels), torch.stack(per_sample).mean())


def test_bce_on_sigmoid_equals_bce_logits(batch):
    logits, labels = batch
    bce = instantiate(compose_config(["loss=bce"]).loss)
    bce_logits = instantiate(compose_config(["loss=bce_logits"]).loss)
    bce_value, bce_grad = grad_of(bce, logits, labels)
    logits_value, logits_grad = grad_of(bce_logits, logits, labels)
    torch.testing.assert_close(bce_value, logits_value)
    torch.testing.assert_close(bce_grad, logits_grad)
    by_hand = F.binary_cross_entropy(logits.sigmoid(), F.one_hot(labels, 10).double())
    torch.testing.assert_close(bce_value, by_hand)


def test_kl_div_to_a_onehot_target_equals_cross_entropy(batch):
    logits, labels = batch
    kl = instantiate(compose_config(["loss=kl_div"]).loss)
    torch.testing.assert_close(kl(logits, labels), F.cross_entropy(logits, labels))


def test_mse_compares_softmax_probabilities_with_onehot_targets(batch):
    logits, labels = batch
    mse = instantiate(compose_config(["loss=mse"]).loss)
    expected = ((logits.softmax(dim=1) - F.one_hot(labels, 10)) ** 2).mean()
    torch.testing.assert_close(mse(logits, labels), expected)


def fitting(task_key):
    """The loss options whose YAML fills `task_key` (input: classification; regression: regression)."""
    return [o for o in options("loss") if (yaml.safe_load((CONF / "loss" / f"{o}.yaml").read_text()) or {}).get(
        task_key) is not None]


@pytest.mark.parametrize("option", fitting("regression"))
def test_every_regression_loss_gives_a_finite_scalar_with_gradients_and_per_sample_losses(option):
    objective = instantiate(compose_config(["data=synthetic_regression", f"loss={option}"]).loss)
    outputs = torch.randn(6, 1, dtype=torch.float32, requires_grad=True)
    targets = torch.rand(6, 1) * 5  # positive: msle's log(1 + y) is defined
    loss = objective(outputs, targets)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss) and outputs.grad.abs().sum() > 0
    torch.testing.assert_close(objective.per_sample(outputs.detach(), targets).mean(), loss.detach())


@pytest.mark.parametrize("option", fitting("input"))
def test_every_loss_option_gives_a_finite_scalar_with_gradients(option, batch):
    logits, labels = batch
    objective = instantiate(compose_config([f"loss={option}"]).loss)
    loss, grad = grad_of(objective, logits.float(), labels)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert grad.abs().sum() > 0


def test_unknown_input_conversion_names_the_key():
    with pytest.raises(UserError, match=r"loss.input=tanh .* identity, log_softmax, sigmoid, softmax"):
        Objective(nn.MSELoss(), "tanh", "onehot", 10)


def test_msle_is_the_squared_difference_of_log1p_of_softmax_and_onehot(batch):
    logits, labels = batch
    msle = instantiate(compose_config(["loss=msle"]).loss)
    expected = ((torch.log1p(logits.softmax(dim=1)) - torch.log1p(F.one_hot(labels, 10).double())) ** 2).mean()
    torch.testing.assert_close(msle(logits, labels), expected)


def test_focal_is_torchvisions_sigmoid_focal_loss_summed_over_classes_and_averaged_over_samples(batch):
    from torchvision.ops import sigmoid_focal_loss

    logits, labels = batch
    focal = instantiate(compose_config(["loss=focal"]).loss)
    onehot = F.one_hot(labels, 10).double()
    expected = sigmoid_focal_loss(logits, onehot, alpha=0.25, gamma=2.0, reduction="sum") / len(labels)
    torch.testing.assert_close(focal(logits, labels), expected)
    # gamma 0 and no alpha weighting: plain BCE on the logits, summed over the classes
    plain = instantiate(compose_config(["loss=focal", "loss.criterion.gamma=0", "loss.criterion.alpha=-1"]).loss)
    torch.testing.assert_close(plain(logits, labels), F.binary_cross_entropy_with_logits(logits, onehot) * 10)


@pytest.mark.parametrize("option", fitting("input"))
def test_every_loss_declares_how_its_logits_become_probabilities_that_sum_to_one(option, batch):
    logits, labels = batch
    objective = instantiate(compose_config([f"loss={option}"]).loss)
    p = objective.log_probabilities(logits).exp()
    torch.testing.assert_close(p.sum(dim=1), torch.ones(len(labels), dtype=p.dtype))
    assert torch.equal(p.argmax(dim=1), logits.argmax(dim=1))  # the confidence is that of the predicted class


def test_bce_probabilities_are_the_sigmoids_normalised_to_sum_to_one(batch):
    logits, _ = batch
    bce = instantiate(compose_config(["loss=bce"]).loss)
    sigmoids = logits.sigmoid()
    torch.testing.assert_close(bce.log_probabilities(logits).exp(), sigmoids / sigmoids.sum(dim=1, keepdim=True))


@pytest.mark.parametrize("option", ["ce", "nll"])
def test_the_nll_of_ce_and_nll_is_their_loss(option, batch):
    logits, labels = batch
    objective = instantiate(compose_config([f"loss={option}"]).loss)
    nll = -objective.log_probabilities(logits)[torch.arange(len(labels)), labels].mean()
    torch.testing.assert_close(nll, objective(logits, labels))


@pytest.mark.parametrize("option", fitting("input"))
def test_per_sample_losses_average_to_the_batch_loss(option, batch):
    logits, labels = batch
    objective = instantiate(compose_config([f"loss={option}"]).loss)
    per_sample = objective.per_sample(logits, labels)
    assert per_sample.shape == (len(labels),)
    torch.testing.assert_close(per_sample.mean(), objective(logits, labels))


def test_unknown_probabilities_conversion_names_the_key():
    with pytest.raises(UserError, match=r"loss.probabilities=argmax is not known: use one of softmax, "
                                        r"normalized_sigmoid"):
        Objective(nn.CrossEntropyLoss(), "identity", "index", 10, probabilities="argmax")
